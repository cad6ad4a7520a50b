package main

import (
	"errors"
	"fmt"

	"github.com/containernetworking/cni/pkg/skel"

	"github.com/weftmesh/weft/cni-plugin/bridge"
	"github.com/weftmesh/weft/cni-plugin/ipam"
)

// cmdDel implements CNI DEL (CNI SPEC, section 2, DEL): delete the veth
// pair (by its host-side name, so a missing netns does not matter), then
// release the address, so it is never handed out while still configured.
// Anything already gone is success; DEL may run any number of times.
func cmdDel(args *skel.CmdArgs) error {
	conf, err := parseConfig(args.StdinData)
	if err != nil {
		return err
	}
	if err := bridge.Detach(args.ContainerID, args.IfName); err != nil {
		return fmt.Errorf("detach pod: %w", err)
	}
	store, err := ipam.Open(conf.DataDir, conf.Name)
	if err != nil {
		return err
	}
	if _, err := store.Release(args.ContainerID, args.IfName); err != nil {
		return fmt.Errorf("release address: %w", err)
	}
	return nil
}

// cmdGC implements CNI GC (CNI SPEC, section 2, GC; spec 1.1.0): release the
// addresses and delete the veths of every attachment not listed in
// cni.dev/valid-attachments. It keeps going after an error and reports all.
func cmdGC(args *skel.CmdArgs) error {
	conf, err := parseConfig(args.StdinData)
	if err != nil {
		return err
	}
	valid := make([]ipam.Attachment, 0, len(conf.ValidAttachments))
	keep := make(map[string]bool, len(conf.ValidAttachments))
	for _, a := range conf.ValidAttachments {
		valid = append(valid, ipam.Attachment{ContainerID: a.ContainerID, IfName: a.IfName})
		keep[bridge.HostVethName(a.ContainerID, a.IfName)] = true
	}
	var errs []error
	if _, err := bridge.PruneVeths(conf.Bridge, keep); err != nil {
		errs = append(errs, fmt.Errorf("prune veths: %w", err))
	}
	store, err := ipam.Open(conf.DataDir, conf.Name)
	if err == nil {
		_, err = store.GC(valid)
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("release stale addresses: %w", err))
	}
	return errors.Join(errs...)
}
