// Command image builds usher's container image without a Docker daemon:
// one layer holding the static usher binary, the CA certificates and a
// passwd entry for the non-root user, on an empty base (no shell, no
// package manager), written as one tar that is at once an OCI image
// layout (podman load, skopeo, crane) and a docker save archive
// (docker load).
//
//	go run . -binary ../../bin/usher-linux-amd64 -out ../../dist/usher-image.tar -version v1.2.3
//
// It is a module of its own so that go-containerregistry never enters the
// usher binary's dependencies.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"
)

func main() {
	var o Options
	flag.StringVar(&o.Binary, "binary", "", "the static usher binary (CGO_ENABLED=0) to put in the image")
	flag.StringVar(&o.Out, "out", "", "the image archive to write")
	flag.StringVar(&o.CABundle, "ca-bundle", "/etc/ssl/certs/ca-certificates.crt", "PEM CA certificates for TLS to MongoDB and identity providers")
	flag.StringVar(&o.Version, "version", "devel", "the image's version (org.opencontainers.image.version and the tag)")
	flag.StringVar(&o.Revision, "revision", "", "the source revision (org.opencontainers.image.revision)")
	flag.StringVar(&o.Repository, "repository", "usher", "the image name docker load tags it with")
	flag.StringVar(&o.Arch, "arch", runtime.GOARCH, "the binary's architecture (GOARCH)")
	created := flag.Int64("created", 0, "creation time, Unix seconds (default SOURCE_DATE_EPOCH, else 0 for a reproducible image)")
	flag.Parse()
	if flag.NArg() != 0 || o.Binary == "" || o.Out == "" {
		fmt.Fprintln(os.Stderr, "usage: image -binary FILE -out FILE [-version V] [-revision R]")
		os.Exit(2)
	}
	o.Created = time.Unix(*created, 0).UTC()
	if *created == 0 {
		if t, err := sourceDateEpoch(os.Getenv("SOURCE_DATE_EPOCH")); err != nil {
			fmt.Fprintln(os.Stderr, "image:", err)
			os.Exit(2)
		} else {
			o.Created = t
		}
	}
	digest, err := Build(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
	fmt.Printf("%s %s:%s %s\n", o.Out, o.Repository, o.Version, digest)
}
