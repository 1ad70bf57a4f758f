package inventory

import (
	"fmt"
	"os"

	"github.com/podsphere/podsphere/api"
)

// image is a Content Library item. Imports go through the server's
// library handler (it writes the archive first); the API may remove items.
type image struct{ base }

func init() { register(api.KindImage, image{}) }

func (image) names() kindNames {
	return kindNames{word: "Library item", createTask: "ImportLibraryItem_Task", changeTask: "UpdateLibraryItem_Task", removeTask: "DeleteLibraryItem_Task",
		createdEvent: "LibraryItemImportedEvent", changedEvent: "LibraryItemUpdatedEvent", goneEvent: "LibraryItemDeletedEvent"}
}

func (image) prepare(_ api.Ref, o *api.Object) error {
	return fmt.Errorf("%s objects are written by vcenter, not by clients: %w", o.Kind, api.ErrInvalid)
}

// admitRemove removes the item's archive once the removal is durable. The
// caller orders this with imports (the server's library lock).
func (image) admitRemove(t *Txn, ref api.Ref, cur *api.Object, _ RemoveOptions) error {
	var spec api.ImageSpec
	_ = cur.DecodeSpec(&spec)
	file := t.inv.LibraryFile(ref.Name, spec.Digest)
	t.AfterCommit(func() { os.Remove(file) })
	return nil
}
