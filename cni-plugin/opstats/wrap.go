package opstats

import (
	"errors"
	"strconv"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
)

// Wrap times a plugin command and spools its outcome in the directory dir
// returns for the command's configuration ("" records nothing). The
// command's own result and error pass through untouched; a failure to
// record is ignored, since nothing may be printed and the pod must not
// fail over metrics.
func Wrap(plugin, command string, dir func(stdin []byte) string, fn func(*skel.CmdArgs) error) func(*skel.CmdArgs) error {
	return func(args *skel.CmdArgs) error {
		start := time.Now()
		err := fn(args)
		if d := dir(args.StdinData); d != "" {
			r := Record{Plugin: plugin, Command: command, Start: start, Seconds: time.Since(start).Seconds(), Error: code(err)}
			if rerr := Append(d, r); rerr != nil {
				return err // best effort, see above
			}
		}
		return err
	}
}

// code is the CNI error code of err, "error" for other errors, "" for
// success.
func code(err error) string {
	if err == nil {
		return ""
	}
	var te *types.Error
	if errors.As(err, &te) {
		return strconv.FormatUint(uint64(te.Code), 10)
	}
	return "error"
}
