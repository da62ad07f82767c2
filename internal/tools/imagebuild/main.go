// Command imagebuild builds the ecr-preflight container image without a
// container engine (`make image` on machines without docker, podman or
// buildah). See package internal/imagebuild.
//
//	go run ./internal/tools/imagebuild -version v0.1.0 -commit $(git rev-parse HEAD)
package main

import (
	"os"

	"github.com/ecr-preflight/ecr-preflight/internal/imagebuild"
)

func main() {
	os.Exit(imagebuild.Main(os.Args[1:], os.Stdout, os.Stderr))
}
