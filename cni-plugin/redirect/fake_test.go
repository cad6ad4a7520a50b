package redirect

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// fakeIPTables is an in-memory nat table with iptables' semantics for the
// calls Apply, Remove and Missing make. It logs every call, so tests can
// check the order, and can fail the n-th Append.
type fakeIPTables struct {
	chains   map[string][]string // chain -> rule lines as iptables -S prints them
	user     []string            // user-defined chains, creation order
	log      []string
	failWhen func(call string) bool
}

var builtins = []string{"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"}

func newFake() *fakeIPTables {
	f := &fakeIPTables{chains: map[string][]string{}}
	for _, c := range builtins {
		f.chains[c] = nil
	}
	return f
}

func (f *fakeIPTables) call(format string, args ...any) error {
	c := fmt.Sprintf(format, args...)
	f.log = append(f.log, c)
	if f.failWhen != nil && f.failWhen(c) {
		return errors.New("injected failure")
	}
	return nil
}

func (f *fakeIPTables) has(chain string) bool { _, ok := f.chains[chain]; return ok }

func (f *fakeIPTables) ClearChain(table, chain string) error {
	if err := f.call("clear %s", chain); err != nil {
		return err
	}
	if !f.has(chain) {
		f.user = append(f.user, chain)
	}
	f.chains[chain] = nil
	return nil
}

func (f *fakeIPTables) DeleteChain(table, chain string) error {
	if err := f.call("delete-chain %s", chain); err != nil {
		return err
	}
	if len(f.chains[chain]) > 0 {
		return fmt.Errorf("chain %s is not empty", chain)
	}
	for _, rules := range f.chains {
		for _, r := range rules {
			if strings.HasSuffix(r, " -j "+chain) {
				return fmt.Errorf("chain %s is still referenced", chain)
			}
		}
	}
	delete(f.chains, chain)
	f.user = slices.DeleteFunc(f.user, func(c string) bool { return c == chain })
	return nil
}

func (f *fakeIPTables) ListChains(table string) ([]string, error) {
	if err := f.call("list-chains"); err != nil {
		return nil, err
	}
	return append(slices.Clone(builtins), f.sortedUser()...), nil
}

func (f *fakeIPTables) List(table, chain string) ([]string, error) {
	if err := f.call("list %s", chain); err != nil {
		return nil, err
	}
	if !f.has(chain) {
		return nil, fmt.Errorf("no chain %s", chain)
	}
	head := "-N " + chain
	if slices.Contains(builtins, chain) {
		head = "-P " + chain + " ACCEPT"
	}
	return append([]string{head}, f.chains[chain]...), nil
}

func (f *fakeIPTables) Exists(table, chain string, spec ...string) (bool, error) {
	if err := f.call("exists %s", chain); err != nil {
		return false, err
	}
	return slices.Contains(f.chains[chain], Rule{Chain: chain, Spec: spec}.String()), nil
}

func (f *fakeIPTables) Append(table, chain string, spec ...string) error {
	if err := f.call("append %s", chain); err != nil {
		return err
	}
	if !f.has(chain) {
		return fmt.Errorf("no chain %s", chain)
	}
	if target := spec[len(spec)-1]; strings.HasPrefix(target, "WEFT-") && !f.has(target) {
		return fmt.Errorf("no chain %s to jump to", target)
	}
	f.chains[chain] = append(f.chains[chain], Rule{Chain: chain, Spec: spec}.String())
	return nil
}

func (f *fakeIPTables) DeleteIfExists(table, chain string, spec ...string) error {
	if err := f.call("delete %s", chain); err != nil {
		return err
	}
	line := Rule{Chain: chain, Spec: spec}.String()
	if i := slices.Index(f.chains[chain], line); i >= 0 {
		f.chains[chain] = slices.Delete(f.chains[chain], i, i+1)
	}
	return nil
}

func (f *fakeIPTables) sortedUser() []string {
	u := slices.Clone(f.user)
	slices.Sort(u)
	return u
}

// save renders the table as iptables-save -t nat does (without "#" lines).
func (f *fakeIPTables) save() string {
	var b strings.Builder
	b.WriteString("*nat\n")
	for _, c := range builtins {
		fmt.Fprintf(&b, ":%s ACCEPT [0:0]\n", c)
	}
	for _, c := range f.sortedUser() {
		fmt.Fprintf(&b, ":%s - [0:0]\n", c)
	}
	for _, c := range append(slices.Clone(builtins), f.sortedUser()...) {
		for _, r := range f.chains[c] {
			b.WriteString(r + "\n")
		}
	}
	b.WriteString("COMMIT\n")
	return b.String()
}
