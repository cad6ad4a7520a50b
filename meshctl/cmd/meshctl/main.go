// Command meshctl is Weft's CLI: install, check and debug the mesh. See
// meshctl/README.md and `meshctl --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/weftmesh/weft/meshctl/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], cli.Env{})
	stop()
	os.Exit(code)
}
