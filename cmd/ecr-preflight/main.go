// Command ecr-preflight is a Kubernetes admission guardrail that checks, at
// admission time, that every ECR image of a workload exists and that the
// node IAM role may pull it.
package main

import (
	"os"

	"github.com/ecr-preflight/ecr-preflight/internal/cli"
)

func main() {
	os.Exit(cli.Execute(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
