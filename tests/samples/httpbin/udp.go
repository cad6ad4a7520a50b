package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
)

// serveUDP answers every datagram with the serving pod's identity as JSON, so
// UDP Services can be tested like HTTP ones (who answered, from where).
func serveUDP(ctx context.Context, addr string, id Identity) error {
	conn, err := net.ListenPacket("udp", addr)
	if err != nil {
		return fmt.Errorf("listen udp %s: %w", addr, err)
	}
	go func() {
		<-ctx.Done()
		conn.Close()
	}()
	buf := make([]byte, 2048)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("read udp: %w", err)
		}
		reply, err := json.Marshal(struct {
			Identity
			Client  string `json:"client"`
			Message string `json:"message"`
		}{id, from.String(), string(buf[:n])})
		if err != nil {
			return fmt.Errorf("encode udp reply: %w", err)
		}
		if _, err := conn.WriteTo(reply, from); err != nil {
			return fmt.Errorf("write udp: %w", err)
		}
	}
}
