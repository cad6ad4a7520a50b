package proxier

import (
	"context"
	"fmt"

	"github.com/weftmesh/weft/proxy/iptables"
	"github.com/weftmesh/weft/proxy/rules"
)

// Cleanup removes every chain and hook weft-proxy owns in one restore (for
// --cleanup, or before handing the node to another Service proxy). Chains of
// other components, including other Weft ones, are left alone.
func Cleanup(ctx context.Context, ipt iptables.Interface) error {
	save, err := ipt.Save(ctx)
	if err != nil {
		return fmt.Errorf("read current rules: %w", err)
	}
	if err := ipt.Restore(ctx, rules.Cleanup(rules.ParseSave(save))); err != nil {
		return fmt.Errorf("remove weft-proxy rules: %w", err)
	}
	return nil
}
