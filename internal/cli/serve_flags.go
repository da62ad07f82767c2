package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// flagGroup is a titled set of flags; help prints one section per group,
// so a long flag list reads by purpose rather than alphabetically.
type flagGroup struct {
	title string
	fs    *pflag.FlagSet
}

// groupedFlags builds the groups into cmd's flags and its usage text.
func groupedFlags(cmd *cobra.Command, groups ...flagGroup) {
	for _, g := range groups {
		cmd.Flags().AddFlagSet(g.fs)
	}
	cmd.SetUsageFunc(func(c *cobra.Command) error {
		var b strings.Builder
		fmt.Fprintf(&b, "Usage:\n  %s\n", c.UseLine())
		for _, g := range groups {
			fmt.Fprintf(&b, "\n%s:\n%s", g.title, g.fs.FlagUsages())
		}
		if inherited := c.InheritedFlags(); inherited.HasAvailableFlags() {
			fmt.Fprintf(&b, "\nGlobal flags:\n%s", inherited.FlagUsages())
		}
		_, err := fmt.Fprint(c.OutOrStderr(), b.String())
		return err
	})
}

// newFlagSet is a flag set for one group.
func newFlagSet(name string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SortFlags = false
	return fs
}

// optionalBool is a bool flag that remembers whether it was set, for
// defaults that depend on other flags.
type optionalBool struct{ p **bool }

func (b optionalBool) String() string {
	if *b.p == nil {
		return ""
	}
	return strconv.FormatBool(**b.p)
}

func (b optionalBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	*b.p = &v
	return nil
}

func (b optionalBool) Type() string { return "bool" }

// optionalBoolVar adds a --name / --name=false flag storing into p, which
// stays nil when the flag is not given.
func optionalBoolVar(fs *pflag.FlagSet, p **bool, name, usage string) {
	fs.Var(optionalBool{p}, name, usage)
	fs.Lookup(name).NoOptDefVal = "true"
}
