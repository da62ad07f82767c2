package cli

import "github.com/spf13/cobra"

// newServeCommand is a placeholder until the serve subcommand lands.
func newServeCommand(_ Streams) *cobra.Command {
	return &cobra.Command{Use: "serve", Hidden: true}
}
