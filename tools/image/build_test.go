package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// staticBinary builds a small Go program with CGO_ENABLED=0: a static
// ELF binary like usher's, without compiling usher here.
func staticBinary(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src := "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"usher stand-in\") }\n"
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module standin\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "usher")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH, "GOFLAGS=-mod=mod")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the stand-in binary: %v\n%s", err, b)
	}
	return out
}

func options(t *testing.T, bin string) Options {
	return Options{
		Binary: bin, Out: filepath.Join(t.TempDir(), "usher-image.tar"),
		CABundle: "/etc/ssl/certs/ca-certificates.crt",
		Version:  "v1.2.3", Revision: "0123456789abcdef", Repository: "usher", Arch: runtime.GOARCH,
		Created: time.Unix(1700000000, 0).UTC(),
	}
}

// extract unpacks the archive into a directory.
func extract(t *testing.T, archive string) (dir string, names []string) {
	t.Helper()
	dir = t.TempDir()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, names
}

// TestImage builds the image from a static binary and reads the archive
// back twice, as an OCI image layout (podman load, skopeo) and as a
// docker save archive (docker load): both hold the same, valid image,
// whose config runs usher as a non-root user with OCI labels and no
// secret, and whose only layer holds no shell.
func TestImage(t *testing.T) {
	bin := staticBinary(t)
	o := options(t, bin)
	digest, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	dir, names := extract(t, o.Out)
	for _, want := range []string{"oci-layout", "index.json", "manifest.json"} {
		if !slices.Contains(names, want) {
			t.Errorf("archive lacks %s: %v", want, names)
		}
	}

	// As an OCI image layout.
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("index.json lists %d manifests, want 1", len(im.Manifests))
	}
	desc := im.Manifests[0]
	if desc.Digest != digest {
		t.Errorf("index.json names %s, Build returned %s", desc.Digest, digest)
	}
	if got := desc.Annotations["io.containerd.image.name"]; got != "usher:v1.2.3" {
		t.Errorf("image name annotation = %q", got)
	}
	if got := desc.Annotations["org.opencontainers.image.ref.name"]; got != "v1.2.3" {
		t.Errorf("ref.name annotation = %q", got)
	}
	img, err := p.Image(desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("the OCI layout's image does not validate: %v", err)
	}

	// As a docker save archive: the same config and layers.
	timg, err := tarball.ImageFromPath(o.Out, nil)
	if err != nil {
		t.Fatalf("read as docker archive: %v", err)
	}
	if err := validate.Image(timg); err != nil {
		t.Fatalf("the docker archive's image does not validate: %v", err)
	}
	for _, im := range []v1.Image{img, timg} {
		c, err := im.ConfigName()
		if err != nil {
			t.Fatal(err)
		}
		want, _ := img.ConfigName()
		if c != want {
			t.Errorf("docker archive config %s, OCI layout config %s", c, want)
		}
	}
	var dm []dockerManifest
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &dm); err != nil {
		t.Fatal(err)
	}
	if len(dm) != 1 || !slices.Equal(dm[0].RepoTags, []string{"usher:v1.2.3"}) {
		t.Errorf("manifest.json = %+v", dm)
	}

	checkConfig(t, img, o)
	checkLayer(t, img, bin, o.CABundle)
}

func checkConfig(t *testing.T, img v1.Image, o Options) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if c.User != "65532:65532" {
		t.Errorf("user = %q, want 65532:65532 (not root)", c.User)
	}
	if !slices.Equal(c.Entrypoint, []string{"/usr/local/bin/usher"}) || !slices.Equal(c.Cmd, []string{"serve"}) {
		t.Errorf("entrypoint %q cmd %q, want usher serve", c.Entrypoint, c.Cmd)
	}
	if cf.OS != "linux" || cf.Architecture != o.Arch {
		t.Errorf("platform %s/%s", cf.OS, cf.Architecture)
	}
	if !cf.Created.Equal(o.Created) {
		t.Errorf("created %v, want %v", cf.Created.Time, o.Created)
	}
	for k, v := range map[string]string{
		"org.opencontainers.image.title":    "usher",
		"org.opencontainers.image.version":  "v1.2.3",
		"org.opencontainers.image.revision": "0123456789abcdef",
		"org.opencontainers.image.source":   "https://github.com/usher-dev/usher",
		"org.opencontainers.image.created":  "2023-11-14T22:13:20Z",
	} {
		if c.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, c.Labels[k], v)
		}
	}
	// No secret in the environment: only the PATH, the listen address and
	// the data directory, and no variable that names a secret.
	for _, e := range c.Env {
		name, _, _ := strings.Cut(e, "=")
		if !slices.Contains([]string{"PATH", "USHER_GRPC_ADDR", "USHER_DATA_DIR"}, name) {
			t.Errorf("unexpected variable in the image's environment: %s", name)
		}
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"MASTER_KEY", "SESSION_KEY", "CLIENT_SECRET", "MONGO_URI", "mongodb://", "PASSWORD", "PRIVATE KEY"} {
		if bytes.Contains(bytes.ToUpper(raw), bytes.ToUpper([]byte(secret))) {
			t.Errorf("the image config mentions %q", secret)
		}
	}
}

func checkLayer(t *testing.T, img v1.Image, bin, caBundle string) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("%d layers, want 1 on an empty base", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rc.Close() }()
	want := map[string]bool{
		"etc/": true, "etc/passwd": true, "etc/group": true, "etc/nsswitch.conf": true,
		"etc/ssl/": true, "etc/ssl/certs/": true, "etc/ssl/certs/ca-certificates.crt": true,
		"home/": true, "home/nonroot/": true, "data/": true, "tmp/": true,
		"usr/": true, "usr/local/": true, "usr/local/bin/": true, "usr/local/bin/usher": true,
	}
	binBytes, _ := os.ReadFile(bin)
	caBytes, _ := os.ReadFile(caBundle)
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		base := path.Base(h.Name)
		for _, shell := range []string{"sh", "bash", "ash", "dash", "zsh", "busybox", "toybox"} {
			if base == shell {
				t.Errorf("the layer holds a shell: %s", h.Name)
			}
		}
		if !want[h.Name] {
			t.Errorf("unexpected file in the layer: %s", h.Name)
		}
		delete(want, h.Name)
		if h.Mode&0o6000 != 0 {
			t.Errorf("%s is setuid or setgid", h.Name)
		}
		if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeDir {
			t.Errorf("%s is neither a file nor a directory (%c)", h.Name, h.Typeflag)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		switch h.Name {
		case "usr/local/bin/usher":
			if !bytes.Equal(b, binBytes) || h.Mode != 0o755 || h.Uid != 0 {
				t.Errorf("the binary: mode %o uid %d, same bytes %v", h.Mode, h.Uid, bytes.Equal(b, binBytes))
			}
		case "etc/ssl/certs/ca-certificates.crt":
			if !bytes.Equal(b, caBytes) {
				t.Error("the CA bundle differs from the machine's")
			}
		case "etc/passwd":
			if !strings.Contains(string(b), "nonroot:x:65532:65532:") || strings.Contains(string(b), "/bin/sh") {
				t.Errorf("passwd = %q", b)
			}
		case "home/nonroot/", "data/":
			if h.Uid != 65532 {
				t.Errorf("%s owned by %d, want 65532", h.Name, h.Uid)
			}
		default:
			if h.Uid != 0 && h.Typeflag == tar.TypeReg {
				t.Errorf("%s owned by %d: the user must not own what it runs", h.Name, h.Uid)
			}
			if bytes.Contains(b, []byte("PRIVATE KEY")) {
				t.Errorf("%s holds a private key", h.Name)
			}
		}
	}
	for name := range want {
		t.Errorf("the layer lacks %s", name)
	}
}

// TestImageReproducible: the same inputs give the same image digest and
// the same archive bytes.
func TestImageReproducible(t *testing.T) {
	bin := staticBinary(t)
	o1, o2 := options(t, bin), options(t, bin)
	d1, err := Build(o1)
	if err != nil {
		t.Fatal(err)
	}
	d2, err := Build(o2)
	if err != nil {
		t.Fatal(err)
	}
	if d1 != d2 {
		t.Errorf("digests differ: %s, %s", d1, d2)
	}
	b1, _ := os.ReadFile(o1.Out)
	b2, _ := os.ReadFile(o2.Out)
	if !bytes.Equal(b1, b2) {
		t.Error("the archives differ")
	}
}

// TestImageRefusesDynamicBinary: a binary that needs a dynamic loader or
// shared libraries would not start on the empty base; the build refuses
// it, and writes nothing.
func TestImageRefusesDynamicBinary(t *testing.T) {
	dyn := "/bin/ls" // Debian's coreutils: dynamically linked against libc
	o := options(t, dyn)
	_, err := Build(o)
	if err == nil || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
		t.Fatalf("Build(%s) = %v, want a refusal naming CGO_ENABLED=0", dyn, err)
	}
	if _, statErr := os.Stat(o.Out); !errors.Is(statErr, os.ErrNotExist) {
		t.Errorf("an archive was written: %v", statErr)
	}
	o = options(t, o.CABundle) // not an ELF file at all
	if _, err := Build(o); err == nil || !strings.Contains(err.Error(), "not an ELF binary") {
		t.Errorf("Build(a PEM file) = %v", err)
	}
	o = options(t, staticBinary(t))
	o.Arch = map[string]string{"amd64": "arm64"}[runtime.GOARCH]
	if o.Arch == "" {
		o.Arch = "amd64"
	}
	if _, err := Build(o); err == nil || !strings.Contains(err.Error(), "built for") {
		t.Errorf("Build(wrong arch) = %v", err)
	}
}
