// Command curl is the client of Weft's sample apps: a pod runs it with
// -sleep and tests exec `curl <url>` inside it, so requests really leave from
// a pod (through its network, and later its sidecar). With -n it sends many
// requests and prints a JSON summary of status codes and serving pods.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

type headers []string

func (h *headers) String() string     { return strings.Join(*h, ", ") }
func (h *headers) Set(v string) error { *h = append(*h, v); return nil }

func main() {
	var req Request
	var hdrs headers
	sleep := flag.Bool("sleep", false, "block until terminated (the container's main process)")
	udp := flag.Bool("udp", false, "send one UDP datagram to host:port and print the reply")
	localPort := flag.Int("local-port", 0, "UDP source port (0: any)")
	flag.StringVar(&req.Method, "X", "GET", "request method")
	flag.Var(&hdrs, "H", "header 'Name: value' (repeatable)")
	flag.StringVar(&req.Body, "d", "", "request body")
	flag.IntVar(&req.Count, "n", 1, "number of requests; >1 prints a JSON summary")
	flag.BoolVar(&req.Summary, "summary", false, "print the JSON summary even when -n is 1")
	flag.IntVar(&req.Concurrency, "c", 1, "concurrent requests when -n > 1")
	flag.DurationVar(&req.Timeout, "timeout", 10*time.Second, "per-request timeout")
	flag.BoolVar(&req.Verbose, "v", false, "print the status line and response headers to stderr")
	flag.BoolVar(&req.Fail, "f", false, "exit 22 on an HTTP status >= 400 (single request)")
	flag.BoolVar(&req.Insecure, "k", false, "do not verify the server's TLS certificate")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *sleep {
		<-ctx.Done()
		return
	}
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: curl [flags] URL  (or curl -udp host:port, or curl -sleep)")
		os.Exit(2)
	}
	if *udp {
		if err := UDP(ctx, flag.Arg(0), *localPort, req.Timeout, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "curl:", err)
			os.Exit(7)
		}
		return
	}
	req.URL, req.Headers = flag.Arg(0), hdrs
	os.Exit(run(ctx, req, os.Stdout, os.Stderr))
}

func run(ctx context.Context, req Request, stdout, stderr io.Writer) int {
	if req.Count > 1 || req.Summary {
		sum := Load(ctx, req)
		if err := sum.Write(stdout); err != nil {
			fmt.Fprintln(stderr, "curl:", err)
			return 1
		}
		return 0
	}
	code, err := Do(ctx, req, stdout, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "curl:", err)
		return 7
	}
	if req.Fail && code >= 400 {
		return 22
	}
	return 0
}
