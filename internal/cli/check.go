package cli

import "github.com/spf13/cobra"

// newCheckCommand is a placeholder until the check subcommand lands.
func newCheckCommand(_ Streams) *cobra.Command {
	return &cobra.Command{Use: "check", Hidden: true}
}
