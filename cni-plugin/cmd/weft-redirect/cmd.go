package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/coreos/go-iptables/iptables"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/weftmesh/weft/cni-plugin/redirect"
)

// cmdAdd implements CNI ADD (CNI SPEC, section 2, ADD). Everything that can
// fail without touching the pod (config, prevResult, the API lookup, the
// plan) happens before it enters the netns; a failure while programming
// removes what this call added, so the netns is left as it was found.
func cmdAdd(args *skel.CmdArgs) error {
	conf, err := parseConfig(args.StdinData)
	if err != nil {
		return err
	}
	if err := requirePrevResult(conf); err != nil {
		return err
	}
	ref, isPod, err := parseArgs(args.Args)
	if err != nil {
		return err
	}
	if isPod {
		if err := redirectPod(conf, ref, args.Netns); err != nil {
			return err
		}
	}
	if err := types.PrintResult(conf.PrevResult, conf.CNIVersion); err != nil {
		return fmt.Errorf("print result: %w", err)
	}
	return nil
}

// requirePrevResult decodes prevResult: weft-redirect only makes sense
// chained after the plugin that gave the pod its interface and address.
func requirePrevResult(conf *config) error {
	if err := version.ParsePrevResult(&conf.PluginConf); err != nil {
		return types.NewError(types.ErrDecodingFailure, "decode prevResult", err.Error())
	}
	if conf.PrevResult == nil {
		return types.NewError(types.ErrInvalidNetworkConfig,
			"weft-redirect needs a prevResult: chain it after weft-bridge in the conflist", "")
	}
	return nil
}

// redirectPod programs the pod's rules if it is meshed.
func redirectPod(conf *config, ref podRef, netnsPath string) error {
	st, meshed, err := sidecarStatus(context.Background(), conf, ref)
	if err != nil || !meshed {
		return err
	}
	plan, err := redirect.PlanFor(st)
	if err != nil {
		return fmt.Errorf("pod %s: %w", ref, err)
	}
	netns, err := ns.GetNS(netnsPath)
	if err != nil {
		return types.NewError(types.ErrInvalidNetNS, fmt.Sprintf("open netns %q", netnsPath), err.Error())
	}
	defer netns.Close()
	return netns.Do(func(ns.NetNS) error {
		ipt, err := iptables.New()
		if err != nil {
			return fmt.Errorf("find iptables: %w", err)
		}
		if err := redirect.Apply(ipt, plan); err != nil {
			if rerr := redirect.Remove(ipt); rerr != nil {
				err = errors.Join(err, fmt.Errorf("roll back: %w", rerr))
			}
			return fmt.Errorf("program redirect rules for pod %s: %w", ref, err)
		}
		return nil
	})
}

// cmdCheck implements CNI CHECK (CNI SPEC, section 2, CHECK): a meshed
// pod's netns must still hold Weft's chains and the jumps to them.
func cmdCheck(args *skel.CmdArgs) error {
	conf, err := parseConfig(args.StdinData)
	if err != nil {
		return err
	}
	if err := requirePrevResult(conf); err != nil {
		return err
	}
	ref, isPod, err := parseArgs(args.Args)
	if err != nil || !isPod {
		return err
	}
	_, meshed, err := sidecarStatus(context.Background(), conf, ref)
	if err != nil || !meshed {
		return err
	}
	netns, err := ns.GetNS(args.Netns)
	if err != nil {
		return types.NewError(types.ErrInvalidNetNS, fmt.Sprintf("open netns %q", args.Netns), err.Error())
	}
	defer netns.Close()
	return netns.Do(func(ns.NetNS) error {
		ipt, err := iptables.New()
		if err != nil {
			return fmt.Errorf("find iptables: %w", err)
		}
		missing, err := redirect.Missing(ipt)
		if err != nil {
			return fmt.Errorf("read redirect rules: %w", err)
		}
		if len(missing) > 0 {
			return fmt.Errorf("pod %s lacks redirect rules: %s", ref, strings.Join(missing, ", "))
		}
		return nil
	})
}

// cmdDel implements CNI DEL (CNI SPEC, section 2, DEL). The rules live in
// the pod's netns and go away with it, so there is nothing to undo; DEL
// succeeds whatever the config or the netns, as the runtime must always be
// able to tear a sandbox down.
func cmdDel(*skel.CmdArgs) error { return nil }

// cmdStatus implements CNI STATUS (CNI SPEC, section 2, STATUS; spec
// 1.1.0): ADD cannot succeed without a usable kubeconfig (weft-cni-node
// writes it before the conflist). The API server itself is not contacted.
func cmdStatus(args *skel.CmdArgs) error {
	conf, err := parseConfig(args.StdinData)
	if err != nil {
		return err
	}
	kc, err := clientcmd.LoadFromFile(conf.Kubeconfig)
	if err == nil {
		_, err = clientcmd.NewDefaultClientConfig(*kc, nil).ClientConfig()
	}
	if err != nil {
		return types.NewError(types.ErrPluginNotAvailable, "kubeconfig "+conf.Kubeconfig+" unusable", err.Error())
	}
	return nil
}

// cmdGC implements CNI GC (CNI SPEC, section 2, GC; spec 1.1.0): the
// plugin keeps no state outside pod network namespaces.
func cmdGC(*skel.CmdArgs) error { return nil }
