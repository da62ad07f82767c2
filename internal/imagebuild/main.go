package imagebuild

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Main is the imagebuild command (internal/tools/imagebuild, run by
// `make image`): it parses args, builds, and prints what it wrote and how to
// use it. It returns the process exit code: 0 built, 1 failed, 2 bad flags.
func Main(args []string, stdout, stderr io.Writer) int {
	o := DefaultOptions()
	fs := flag.NewFlagSet("imagebuild", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		_, _ = fmt.Fprintf(stderr, "Usage: go run ./internal/tools/imagebuild [flags]\n\n"+
			"Builds the ecr-preflight container image without a container engine: an OCI\n"+
			"layout and one docker tarball per platform under -out.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&o.ModuleDir, "module", o.ModuleDir, "the ecr-preflight module root (where go build runs)")
	fs.StringVar(&o.OutDir, "out", o.OutDir, "output directory")
	platforms := fs.String("platforms", "linux/amd64,linux/arm64", "comma-separated platforms")
	fs.StringVar(&o.Version, "version", o.Version, "version stamped into the binary and the labels (make: git describe)")
	fs.StringVar(&o.Commit, "commit", o.Commit, "git commit stamped into the binary and the revision label")
	fs.StringVar(&o.CABundle, "ca-bundle", o.CABundle, "CA certificate bundle to copy into the image (Debian's ca-certificates)")
	fs.StringVar(&o.Repository, "repository", o.Repository, "image repository, the name in the docker tarballs")
	fs.StringVar(&o.Tag, "tag", "", "image tag (default: the version, '+' replaced by '-')")
	fs.StringVar(&o.Source, "source", o.Source, "org.opencontainers.image.source label")
	epoch := fs.String("source-date-epoch", os.Getenv("SOURCE_DATE_EPOCH"),
		"creation time and file times, in seconds since 1970 (default $SOURCE_DATE_EPOCH, else 0)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		_, _ = fmt.Fprintf(stderr, "imagebuild: unexpected arguments %q\n", fs.Args())
		return 2
	}
	var err error
	if o.Platforms, err = parsePlatforms(*platforms); err != nil {
		_, _ = fmt.Fprintf(stderr, "imagebuild: -platforms: %v\n", err)
		return 2
	}
	if *epoch != "" {
		secs, err := strconv.ParseInt(*epoch, 10, 64)
		if err != nil || secs < 0 {
			_, _ = fmt.Fprintf(stderr, "imagebuild: -source-date-epoch %q: want seconds since 1970\n", *epoch)
			return 2
		}
		o.Created = time.Unix(secs, 0).UTC()
	}
	if err := o.Validate(); err != nil {
		_, _ = fmt.Fprintf(stderr, "imagebuild: %v\n", err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := Build(ctx, o, stdout)
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "imagebuild: %v\n", err)
		return 1
	}
	printResult(stdout, res)
	return 0
}

func parsePlatforms(s string) ([]v1.Platform, error) {
	var out []v1.Platform
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := v1.ParsePlatform(f)
		if err != nil {
			return nil, err
		}
		out = append(out, *p)
	}
	if len(out) == 0 {
		return nil, errors.New("no platform")
	}
	return out, nil
}

func printResult(w io.Writer, r *Result) {
	platforms := make([]string, 0, len(r.Manifests))
	for p := range r.Manifests {
		platforms = append(platforms, p)
	}
	sort.Strings(platforms)
	_, _ = fmt.Fprintf(w, "imagebuild: built %s for %s\n", r.Name, strings.Join(platforms, ", "))
	_, _ = fmt.Fprintf(w, "  %s  OCI layout, multi-platform index %s\n", r.LayoutDir, r.Digest)
	_, _ = fmt.Fprintf(w, "      push: crane push %s REGISTRY/ecr-preflight:TAG\n", r.LayoutDir)
	_, _ = fmt.Fprintf(w, "        or: skopeo copy --all oci:%s:%s docker://REGISTRY/ecr-preflight:TAG\n", r.LayoutDir, tagOf(r.Name))
	for _, p := range platforms {
		_, _ = fmt.Fprintf(w, "  %s  %s image %s (docker load -i %s)\n", r.Tarballs[p], p, r.Manifests[p], r.Tarballs[p])
	}
}

func tagOf(ref string) string {
	if i := strings.LastIndex(ref, ":"); i >= 0 {
		return ref[i+1:]
	}
	return ref
}
