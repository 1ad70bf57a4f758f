package manifest

import (
	"fmt"
	"math/big"
	"strings"
)

// MHzPerCore is how many MHz one Kubernetes CPU (one core, "1" or "1000m")
// stands for when a Pod's cpu quantities become vSphere MHz reservations and
// limits. vSphere sizes CPU in MHz of a physical core; we fix a core at 1 GHz
// so "500m" reads as 500 MHz and the numbers stay easy to check by eye.
const MHzPerCore = 1000

// Memory and storage units. Like vSphere, podsphere's MB is 2^20 bytes and
// its GB 2^30 bytes, so "512Mi" is 512 MB and "1G" (10^9 bytes) is 954 MB.
const (
	bytesPerMB = 1 << 20
	bytesPerGB = 1 << 30
)

// maxQuantityLen bounds the text we parse, and maxExponent the power of ten,
// so a hostile "1e999999999" cannot make us build a gigantic number.
const (
	maxQuantityLen = 64
	maxExponent    = 40
)

// Quantity is a Kubernetes resource quantity ("500m", "1.5", "512Mi", "1e3"),
// held exactly as a rational number of base units (cores, bytes, objects).
type Quantity struct {
	text  string
	value *big.Rat
}

// quantitySuffixes maps Kubernetes' suffixes to their multipliers: the
// binary SI ones (Ki = 2^10 ...) and the decimal SI ones (m = 10^-3 ...).
var quantitySuffixes = map[string]*big.Rat{
	"n":  big.NewRat(1, 1_000_000_000),
	"u":  big.NewRat(1, 1_000_000),
	"m":  big.NewRat(1, 1_000),
	"":   big.NewRat(1, 1),
	"k":  big.NewRat(1_000, 1),
	"M":  big.NewRat(1_000_000, 1),
	"G":  big.NewRat(1_000_000_000, 1),
	"T":  big.NewRat(1_000_000_000_000, 1),
	"P":  big.NewRat(1_000_000_000_000_000, 1),
	"E":  big.NewRat(1_000_000_000_000_000_000, 1),
	"Ki": big.NewRat(1<<10, 1),
	"Mi": big.NewRat(1<<20, 1),
	"Gi": big.NewRat(1<<30, 1),
	"Ti": big.NewRat(1<<40, 1),
	"Pi": big.NewRat(1<<50, 1),
	"Ei": new(big.Rat).SetInt(new(big.Int).Lsh(big.NewInt(1), 60)),
}

// ParseQuantity reads a Kubernetes quantity: an optionally signed decimal
// number followed by a suffix (n u m k M G T P E, Ki Mi Gi Ti Pi Ei) or a
// decimal exponent (e3, E-2). Errors wrap nothing: callers add the field.
func ParseQuantity(s string) (Quantity, error) {
	bad := func(why string) (Quantity, error) {
		return Quantity{}, fmt.Errorf("%q is not a quantity: %s", s, why)
	}
	if s == "" {
		return bad("it is empty")
	}
	if len(s) > maxQuantityLen {
		return Quantity{}, fmt.Errorf("quantity %.20q... is longer than %d characters", s, maxQuantityLen)
	}
	i := 0
	neg := false
	if s[0] == '+' || s[0] == '-' {
		neg = s[0] == '-'
		i++
	}
	start := i
	digits, dot := 0, false
	for ; i < len(s); i++ {
		c := s[i]
		if c >= '0' && c <= '9' {
			digits++
			continue
		}
		if c == '.' && !dot {
			dot = true
			continue
		}
		break
	}
	if digits == 0 {
		return bad("want a number such as 500m, 2, 1.5, 512Mi or 1G")
	}
	num := s[start:i]
	suffix := s[i:]
	mult, ok := quantitySuffixes[suffix]
	if !ok {
		exp, isExp := parseExponent(suffix)
		if !isExp {
			return bad(fmt.Sprintf("unknown suffix %q (want one of n u m k M G T P E Ki Mi Gi Ti Pi Ei, or an exponent such as e3)", suffix))
		}
		if exp > maxExponent || exp < -maxExponent {
			return bad(fmt.Sprintf("exponent is beyond ±%d", maxExponent))
		}
		mult = pow10(exp)
	}
	v, ok := new(big.Rat).SetString(strings.TrimSuffix(num, "."))
	if !ok {
		return bad("want a number such as 500m, 2, 1.5, 512Mi or 1G")
	}
	v.Mul(v, mult)
	if neg {
		v.Neg(v)
	}
	return Quantity{text: s, value: v}, nil
}

// parseExponent reads "e3", "E-2", "e+10" (a decimal exponent suffix).
func parseExponent(s string) (int, bool) {
	if len(s) < 2 || s[0] != 'e' && s[0] != 'E' {
		return 0, false
	}
	s = s[1:]
	neg := false
	if s[0] == '+' || s[0] == '-' {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" {
		return 0, false
	}
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		if n <= maxExponent {
			n = n*10 + int(c-'0')
		}
	}
	if neg {
		n = -n
	}
	return n, true
}

func pow10(exp int) *big.Rat {
	p := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(abs(exp))), nil)
	if exp < 0 {
		return new(big.Rat).SetFrac(big.NewInt(1), p)
	}
	return new(big.Rat).SetInt(p)
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// String is the quantity as written.
func (q Quantity) String() string { return q.text }

// MHz converts a cpu quantity (in cores) to MHz at MHzPerCore, rounding up
// so that "0.1m" still reserves something.
func (q Quantity) MHz() (int64, error) { return q.ceil(big.NewRat(MHzPerCore, 1), "MHz") }

// MB converts a memory quantity (in bytes) to MB (2^20 bytes), rounding up.
func (q Quantity) MB() (int64, error) { return q.ceil(big.NewRat(1, bytesPerMB), "MB") }

// GB converts a storage quantity (in bytes) to GB (2^30 bytes), rounding up.
func (q Quantity) GB() (int64, error) { return q.ceil(big.NewRat(1, bytesPerGB), "GB") }

// Count reads an object count ("10", "1k"), which must be a whole number.
func (q Quantity) Count() (int64, error) {
	if q.value == nil {
		return 0, fmt.Errorf("quantity is empty")
	}
	if !q.value.IsInt() {
		return 0, fmt.Errorf("%q is not a whole number", q.text)
	}
	return q.ceil(big.NewRat(1, 1), "")
}

// ceil scales the quantity and rounds up to a non-negative int64.
func (q Quantity) ceil(scale *big.Rat, unit string) (int64, error) {
	if q.value == nil {
		return 0, fmt.Errorf("quantity is empty")
	}
	if q.value.Sign() < 0 {
		return 0, fmt.Errorf("%q is negative", q.text)
	}
	v := new(big.Rat).Mul(q.value, scale)
	n := new(big.Int).Quo(v.Num(), v.Denom()) // both positive: truncation is floor
	if !v.IsInt() {
		n.Add(n, big.NewInt(1))
	}
	if !n.IsInt64() {
		if unit != "" {
			unit = " " + unit
		}
		return 0, fmt.Errorf("%q is too large (over %d%s)", q.text, int64(^uint64(0)>>1), unit)
	}
	return n.Int64(), nil
}
