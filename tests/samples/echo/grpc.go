package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// echoMethod is the one gRPC method the echo server offers. Its messages
// are google.protobuf.StringValue (request: any text, ignored; response:
// the echo text format), so no .proto file or generated code is needed and
// any gRPC client can call it.
const (
	echoService = "weft.echo.v1.Echo"
	echoMethod  = "/" + echoService + "/Echo"
)

// echoer is the gRPC service's handler type.
type echoer interface {
	Echo(ctx context.Context, in *wrapperspb.StringValue) (*wrapperspb.StringValue, error)
}

var echoServiceDesc = grpc.ServiceDesc{
	ServiceName: echoService,
	HandlerType: (*echoer)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Echo",
		Handler: func(srv any, ctx context.Context, dec func(any) error, intercept grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			call := func(ctx context.Context, req any) (any, error) {
				return srv.(echoer).Echo(ctx, req.(*wrapperspb.StringValue))
			}
			if intercept == nil {
				return call(ctx, in)
			}
			return intercept(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: echoMethod}, call)
		},
	}},
	Metadata: "weft/echo (StringValue in, StringValue out)",
}

// grpcEcho answers Echo with the description of the call.
type grpcEcho struct {
	id   Identity
	port string
}

// NewGRPCServer is a gRPC server offering weft.echo.v1.Echo on port.
func NewGRPCServer(id Identity, port string, opts ...grpc.ServerOption) *grpc.Server {
	s := grpc.NewServer(opts...)
	s.RegisterService(&echoServiceDesc, &grpcEcho{id: id, port: port})
	return s
}

// Echo describes the call in the echo text format: :authority is the
// Host, the full method the URL, the metadata the request headers.
func (g *grpcEcho) Echo(ctx context.Context, _ *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
	r := Request{
		Version: g.id.Version, Hostname: g.id.Hostname, Port: g.port,
		URL: echoMethod, Method: http.MethodPost, Proto: "HTTP/2.0", Header: http.Header{},
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		for k, vs := range md {
			if k == ":authority" {
				r.Host = strings.Join(vs, ",")
				continue
			}
			for _, v := range vs {
				r.Header.Add(k, v)
			}
		}
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		if host, _, err := net.SplitHostPort(p.Addr.String()); err == nil {
			r.ClientIP = host
		}
	}
	var b bytes.Buffer
	if err := WriteFields(&b, "", Describe(r)); err != nil {
		return nil, fmt.Errorf("describe call: %w", err)
	}
	return wrapperspb.String(b.String()), nil
}

// newGRPCCaller calls Echo over one connection (plain text: the sidecar
// adds mTLS) for every request of a batch; a proxy balances each call on
// its own, so a weighted split shows over one connection too. A call that
// ends with a gRPC status is an answer (its HTTP equivalent is the
// StatusCode); a call that failed Unavailable without any response
// header or trailer never reached a server (a connect failure; a proxy's
// own answer carries headers such as server and date) and is an error.
func newGRPCCaller(c ClientConfig) (caller, func(), error) {
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if c.Host != "" {
		opts = append(opts, grpc.WithAuthority(c.Host))
	}
	conn, err := grpc.NewClient("passthrough:///"+c.URL.Host, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("grpc client for %s: %w", c.URL.Host, err)
	}
	md := metadata.MD{}
	for name, vs := range c.Headers {
		md.Append(strings.ToLower(name), vs...)
	}
	call := func(ctx context.Context) (Answer, error) {
		ctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(ctx, md), c.Timeout)
		defer cancel()
		var header, trailer metadata.MD
		out := new(wrapperspb.StringValue)
		err := conn.Invoke(ctx, echoMethod, wrapperspb.String(c.Message), out, grpc.Header(&header), grpc.Trailer(&trailer))
		st, ok := status.FromError(err)
		if !ok {
			return Answer{}, fmt.Errorf("grpc call: %w", err)
		}
		if st.Code() == codes.Unavailable && header.Len() == 0 && trailer.Len() == 0 {
			return Answer{}, fmt.Errorf("grpc call: %w", err)
		}
		a := Answer{StatusCode: httpStatus(st.Code()), GrpcStatus: st.Code().String(), Header: http.Header{}}
		for _, m := range []metadata.MD{header, trailer} {
			for k, vs := range m {
				for _, v := range vs {
					a.Header.Add(k, v)
				}
			}
		}
		if err == nil {
			lines, rerr := ReadLines(strings.NewReader(out.GetValue()), maxBody)
			if rerr != nil {
				return Answer{}, rerr
			}
			a.Body = lines
		} else {
			a.Body = []string{KeyError + "=" + st.Message()}
		}
		return a, nil
	}
	return call, func() { conn.Close() }, nil
}

// httpStatus maps a gRPC status to the HTTP status the suite compares
// against (it maps its expected gRPC OK to 200), following the table of
// https://github.com/grpc/grpc/blob/master/doc/http-grpc-status-mapping.md
// read backwards, and grpc-gateway's choices for the rest.
func httpStatus(c codes.Code) int {
	switch c {
	case codes.OK:
		return http.StatusOK
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted:
		return http.StatusConflict
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Canceled:
		return 499
	case codes.Unimplemented:
		return http.StatusNotImplemented
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}
