package cli

import "github.com/spf13/cobra"

// newPolicyCommand is a placeholder until the policy subcommand lands.
func newPolicyCommand(_ Streams) *cobra.Command {
	return &cobra.Command{Use: "policy", Hidden: true}
}
