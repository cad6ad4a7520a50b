package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"
)

// tcpIdle bounds how long a TCP connection may sit without data, so a
// stuck peer cannot hold a server goroutine forever.
const tcpIdle = 30 * time.Second

// ServeTCP answers every connection on l with the description of the
// connection (Hostname, IP, ServicePort) and then echoes what the peer
// sends until it closes its side.
func ServeTCP(ctx context.Context, l net.Listener, id Identity, log *slog.Logger) error {
	go func() {
		<-ctx.Done()
		if err := l.Close(); err != nil {
			log.Debug("close tcp listener", "err", err)
		}
	}()
	for {
		conn, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accept tcp: %w", err)
		}
		go func() {
			if err := echoTCP(conn, id); err != nil {
				log.Debug("tcp connection", "remote", conn.RemoteAddr().String(), "err", err)
			}
		}()
	}
}

func echoTCP(conn net.Conn, id Identity) error {
	defer conn.Close()
	r := Request{Version: id.Version, Hostname: id.Hostname, Port: portOf(conn.LocalAddr()), Proto: "TCP"}
	if host, _, err := net.SplitHostPort(conn.RemoteAddr().String()); err == nil {
		r.ClientIP = host
	}
	if err := WriteFields(conn, "", Describe(r)); err != nil {
		return err
	}
	buf := make([]byte, 32<<10)
	for {
		if err := conn.SetReadDeadline(time.Now().Add(tcpIdle)); err != nil {
			return fmt.Errorf("set deadline: %w", err)
		}
		n, err := conn.Read(buf)
		if n > 0 {
			if _, werr := conn.Write(buf[:n]); werr != nil {
				return fmt.Errorf("echo: %w", werr)
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
	}
}

// tcpCall connects to addr, sends msg, closes its sending side and reads
// the whole answer: the server's description followed by msg echoed back.
func tcpCall(ctx context.Context, addr, msg string, timeout time.Duration) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(dl); err != nil {
			return nil, fmt.Errorf("set deadline: %w", err)
		}
	}
	if _, err := io.WriteString(conn, msg+"\n"); err != nil {
		return nil, fmt.Errorf("send to %s: %w", addr, err)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		if err := tc.CloseWrite(); err != nil {
			return nil, fmt.Errorf("close write: %w", err)
		}
	}
	var b bytes.Buffer
	if _, err := io.Copy(&b, io.LimitReader(conn, maxBody)); err != nil {
		return nil, fmt.Errorf("read from %s: %w", addr, err)
	}
	return ReadLines(&b, maxBody)
}
