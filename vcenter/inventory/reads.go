package inventory

import (
	"fmt"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/pools"
	"github.com/podsphere/podsphere/quota"
)

// getPool reads the resource pool at path, refusing a path of another kind.
func (inv *Inventory) getPool(path string) (api.Ref, *api.Object, error) {
	ref, err := api.ParsePath(path)
	if err != nil {
		return ref, nil, err
	}
	if ref.Kind != api.KindResourcePool {
		return ref, nil, fmt.Errorf("%s is a %s, not a resource pool: %w", path, ref.Kind, api.ErrInvalid)
	}
	o, err := inv.store.Get(path)
	return ref, o, err
}

// PoolInfo answers pool.info.
func (inv *Inventory) PoolInfo(path string) (*api.PoolInfo, error) {
	ref, o, err := inv.getPool(path)
	if err != nil {
		return nil, err
	}
	tree, err := inv.ix.cluster(ref.ClusterPath(), nil).Tree()
	if err != nil {
		return nil, err
	}
	info := &api.PoolInfo{Pool: o}
	info.CPU.OverallUsage, info.Mem.OverallUsage = inv.ix.subtreeOverall(path)
	for _, r := range []struct {
		res pools.Resource
		out *api.PoolUsage
	}{{pools.CPU, &info.CPU}, {pools.Memory, &info.Mem}} {
		u, err := tree.Usage(path, r.res)
		if err != nil {
			return nil, err
		}
		overall := r.out.OverallUsage
		*r.out = api.PoolUsage{OverallUsage: overall, Reservation: u.Reservation, Limit: u.Limit, Expandable: u.Expandable, Shares: u.Shares,
			ReservationUsed: u.ReservationUsed, ReservationUsedForVm: u.ReservationUsedForVm,
			UnreservedForPool: u.UnreservedForPool, UnreservedForVm: u.UnreservedForVm, MaxUsage: u.MaxUsage}
	}
	return info, nil
}

// QuotaInfo answers quota.info.
func (inv *Inventory) QuotaInfo(path string) (*api.QuotaInfo, error) {
	_, o, err := inv.getPool(path)
	if err != nil {
		return nil, err
	}
	var spec api.PoolSpec
	_ = o.DecodeSpec(&spec)
	info := &api.QuotaInfo{Path: path, Limits: api.QuotaLimits(quota.Unlimited()), Used: inv.ix.subtreeUse(path)}
	if spec.Quota != nil {
		info.Limits = *spec.Quota
	}
	return info, nil
}
