package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"
)

// UDP sends one datagram to addr and copies the reply to out. A fixed
// localPort (non-zero) reuses the same 5-tuple across calls, which is what
// exposes stale conntrack entries after a UDP Service's endpoints change.
func UDP(ctx context.Context, addr string, localPort int, timeout time.Duration, out io.Writer) error {
	d := net.Dialer{Timeout: timeout}
	if localPort != 0 {
		d.LocalAddr = &net.UDPAddr{Port: localPort}
	}
	conn, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		return fmt.Errorf("dial udp %s: %w", addr, err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return fmt.Errorf("set deadline: %w", err)
	}
	if _, err := conn.Write([]byte("ping")); err != nil {
		return fmt.Errorf("send to %s: %w", addr, err)
	}
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		return fmt.Errorf("no reply from %s: %w", addr, err)
	}
	_, err = out.Write(buf[:n])
	return err
}
