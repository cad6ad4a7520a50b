package main

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/weftmesh/weft/proxy/internal/netns"
)

// forwardAPIServer listens on listenAddr inside the namespace and relays
// every connection to target, dialled from the host namespace. The proxies
// inside thus reach the API server at a loopback address without any route,
// interface or rule being added.
func forwardAPIServer(ctx context.Context, ns, listenAddr, target string) (net.Listener, error) {
	var ln net.Listener
	err := netns.Do(ns, func() error {
		var err error
		ln, err = net.Listen("tcp", listenAddr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen in %s: %w", ns, err)
	}
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			go relay(ctx, in, target)
		}
	}()
	return ln, nil
}

func relay(ctx context.Context, in net.Conn, target string) {
	defer closeQuietly(in)
	var d net.Dialer
	out, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return
	}
	defer closeQuietly(out)
	done := make(chan struct{}, 2)
	go func() { copyQuietly(out, in); done <- struct{}{} }()
	go func() { copyQuietly(in, out); done <- struct{}{} }()
	<-done
}

// copyQuietly copies until either side closes; relay errors only mean a
// connection ended.
func copyQuietly(dst io.Writer, src io.Reader) {
	if _, err := io.Copy(dst, src); err != nil {
		return
	}
}

func closeQuietly(c io.Closer) {
	if err := c.Close(); err != nil {
		return
	}
}

// dialIn opens a TCP connection from inside the namespace (to scrape a
// proxy's metrics on its loopback).
func dialIn(ns, addr string) (net.Conn, error) {
	var c net.Conn
	err := netns.Do(ns, func() error {
		var err error
		c, err = net.Dial("tcp", addr)
		return err
	})
	return c, err
}
