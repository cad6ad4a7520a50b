package generator

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// mustAny packs a typed config, deterministically so equal config always
// has equal bytes (the xDS server versions resources by content hash).
// Marshalling a well-formed generated message cannot fail, so a failure is
// a programming error and panics, like regexp.MustCompile.
func mustAny(m proto.Message) *anypb.Any {
	a := &anypb.Any{}
	if err := anypb.MarshalFrom(a, m, proto.MarshalOptions{Deterministic: true}); err != nil {
		panic(fmt.Sprintf("pack %T: %v", m, err))
	}
	return a
}

func duration(d time.Duration) *durationpb.Duration { return durationpb.New(d) }
