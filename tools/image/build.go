package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's user: not root, and the uid distroless images use, so that
// runAsUser in Kubernetes and file ownership in volumes agree.
const (
	uid        = 65532
	userName   = "nonroot"
	binPath    = "/usr/local/bin/usher"
	homeDir    = "/home/nonroot"
	dataDir    = "/data"
	sourceRepo = "https://github.com/usher-dev/usher"
)

// Options says what to build.
type Options struct {
	Binary, Out, CABundle string
	Version, Revision     string
	Repository, Arch      string
	Created               time.Time
}

// Build writes the image archive o.Out and returns the image's manifest
// digest.
func Build(o Options) (v1.Hash, error) {
	bin, err := os.ReadFile(o.Binary)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("read the binary: %w", err)
	}
	if err := checkStatic(bin, o.Arch); err != nil {
		return v1.Hash{}, fmt.Errorf("%s: %w", o.Binary, err)
	}
	ca, err := os.ReadFile(o.CABundle)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("read the CA bundle: %w", err)
	}
	if !bytes.Contains(ca, []byte("-----BEGIN CERTIFICATE-----")) {
		return v1.Hash{}, fmt.Errorf("%s holds no PEM certificate", o.CABundle)
	}
	img, err := image(o, bin, ca)
	if err != nil {
		return v1.Hash{}, err
	}
	digest, err := img.Digest()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("image digest: %w", err)
	}
	if err := writeArchive(o, img); err != nil {
		return v1.Hash{}, err
	}
	return digest, nil
}

// image assembles the image: one layer on an empty base, and its config.
func image(o Options, bin, ca []byte) (v1.Image, error) {
	files, err := rootFS(bin, ca, o.Created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(files)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: v1.Time{Time: o.Created}, CreatedBy: "usher tools/image", Comment: "usher " + o.Version},
	})
	if err != nil {
		return nil, fmt.Errorf("append the layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = o.Arch
	cf.Created = v1.Time{Time: o.Created}
	cf.Author = ""
	cf.Config = v1.Config{
		User:       strconv.Itoa(uid) + ":" + strconv.Itoa(uid),
		Entrypoint: []string{binPath},
		Cmd:        []string{"serve"},
		WorkingDir: homeDir,
		// Listen on every address in a container (the default, loopback,
		// cannot be published); keep the embedded store in the /data
		// volume. /healthz and /metrics stay on loopback unless
		// USHER_HTTP_ADDR says otherwise (the Helm chart sets it).
		Env: []string{
			"PATH=/usr/local/bin",
			"USHER_GRPC_ADDR=:9001",
			"USHER_DATA_DIR=" + dataDir,
		},
		ExposedPorts: map[string]struct{}{"9001/tcp": {}},
		Volumes:      map[string]struct{}{dataDir: {}},
		StopSignal:   "SIGTERM",
		Labels:       labels(o),
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("set the config: %w", err)
	}
	return img, nil
}

// labels are the OCI annotations of the image's config.
func labels(o Options) map[string]string {
	l := map[string]string{
		"org.opencontainers.image.title":         "usher",
		"org.opencontainers.image.description":   "usher: an Envoy ext_authz server for API keys, bearer tokens and browser login",
		"org.opencontainers.image.version":       o.Version,
		"org.opencontainers.image.created":       o.Created.Format(time.RFC3339),
		"org.opencontainers.image.source":        sourceRepo,
		"org.opencontainers.image.url":           sourceRepo,
		"org.opencontainers.image.documentation": sourceRepo + "#readme",
	}
	if o.Revision != "" {
		l["org.opencontainers.image.revision"] = o.Revision
	}
	return l
}

// entry is one file or directory of the image's root.
type entry struct {
	name     string
	mode     int64
	uid      int
	dir      bool
	contents []byte
}

// rootFS is the layer: the binary, the CA certificates, passwd and group
// naming the user, its home, /data and /tmp. Nothing else: no shell.
func rootFS(bin, ca []byte, created time.Time) ([]byte, error) {
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\n%s:x:%d:%d:%s:%s:/sbin/nologin\n", userName, uid, uid, userName, homeDir)
	group := fmt.Sprintf("root:x:0:\n%s:x:%d:\n", userName, uid)
	entries := []entry{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/passwd", mode: 0o644, contents: []byte(passwd)},
		{name: "etc/group", mode: 0o644, contents: []byte(group)},
		{name: "etc/nsswitch.conf", mode: 0o644, contents: []byte("hosts: files dns\n")},
		{name: "etc/ssl/", mode: 0o755, dir: true},
		{name: "etc/ssl/certs/", mode: 0o755, dir: true},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, contents: ca},
		{name: "home/", mode: 0o755, dir: true},
		{name: "home/nonroot/", mode: 0o700, uid: uid, dir: true},
		{name: "data/", mode: 0o700, uid: uid, dir: true},
		{name: "tmp/", mode: 0o1777, dir: true},
		{name: "usr/", mode: 0o755, dir: true},
		{name: "usr/local/", mode: 0o755, dir: true},
		{name: "usr/local/bin/", mode: 0o755, dir: true},
		{name: "usr/local/bin/usher", mode: 0o755, contents: bin},
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{
			Name: e.name, Mode: e.mode, Uid: e.uid, Gid: e.uid, ModTime: created,
			Typeflag: tar.TypeReg, Size: int64(len(e.contents)), Format: tar.FormatPAX,
		}
		if e.dir {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("layer %s: %w", e.name, err)
		}
		if _, err := tw.Write(e.contents); err != nil {
			return nil, fmt.Errorf("layer %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	return buf.Bytes(), nil
}

// elfMachines maps GOARCH to the ELF machine a binary for it declares.
var elfMachines = map[string]elf.Machine{
	"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "arm": elf.EM_ARM,
	"ppc64le": elf.EM_PPC64, "s390x": elf.EM_S390, "riscv64": elf.EM_RISCV,
}

// checkStatic refuses anything but a statically linked Linux ELF binary
// for arch: the image has no libc and no dynamic loader.
func checkStatic(bin []byte, arch string) error {
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return fmt.Errorf("not an ELF binary: %w", err)
	}
	defer func() { _ = f.Close() }()
	if want, ok := elfMachines[arch]; !ok {
		return fmt.Errorf("architecture %q is not supported", arch)
	} else if f.Machine != want {
		return fmt.Errorf("built for %v, not %s", f.Machine, arch)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return errors.New("dynamically linked (it names a program interpreter): build it with CGO_ENABLED=0")
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("read its dynamic section: %w", err)
	}
	if len(libs) > 0 {
		return fmt.Errorf("needs shared libraries %v: build it with CGO_ENABLED=0", libs)
	}
	return nil
}

// writeArchive writes img as one tar holding an OCI image layout
// (oci-layout, index.json, blobs/) and, beside it, docker save's
// manifest.json pointing at the same blobs, so that podman load, skopeo
// and docker load all accept it.
func writeArchive(o Options, img v1.Image) error {
	dir, err := os.MkdirTemp("", "usher-image-")
	if err != nil {
		return fmt.Errorf("temporary layout: %w", err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	tag := o.Repository + ":" + o.Version
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("OCI layout: %w", err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": o.Version,
		"io.containerd.image.name":          tag,
	})); err != nil {
		return fmt.Errorf("OCI layout: %w", err)
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return fmt.Errorf("config digest: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("layers: %w", err)
	}
	dm := dockerManifest{Config: blobPath(cfgName), RepoTags: []string{tag}}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return fmt.Errorf("layer digest: %w", err)
		}
		dm.Layers = append(dm.Layers, blobPath(d))
	}
	mj, err := json.Marshal([]dockerManifest{dm})
	if err != nil {
		return fmt.Errorf("manifest.json: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), mj, 0o600); err != nil {
		return fmt.Errorf("manifest.json: %w", err)
	}
	return tarDir(dir, o.Out, o.Created)
}

// dockerManifest is one entry of docker save's manifest.json.
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

func blobPath(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

// tarDir writes the files under dir to the tar out, in name order with
// fixed times, so that the same image gives the same archive.
func tarDir(dir, out string, mtime time.Time) error {
	var names []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path != dir {
			names = append(names, path)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list the layout: %w", err)
	}
	slices.Sort(names)
	if err := os.MkdirAll(filepath.Dir(out), 0o750); err != nil {
		return fmt.Errorf("output directory: %w", err)
	}
	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("create %s: %w", out, err)
	}
	defer func() { _ = os.Remove(tmp) }() // gone after the rename
	tw := tar.NewWriter(f)
	for _, path := range names {
		if err := addFile(tw, dir, path, mtime); err != nil {
			f.Close()
			return err
		}
	}
	if err := tw.Close(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", out, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	return nil
}

func addFile(tw *tar.Writer, dir, path string, mtime time.Time) error {
	rel, err := filepath.Rel(dir, path)
	if err != nil {
		return fmt.Errorf("archive %s: %w", path, err)
	}
	name := filepath.ToSlash(rel)
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("archive %s: %w", name, err)
	}
	if fi.IsDir() {
		return tw.WriteHeader(&tar.Header{Name: name + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime})
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("archive %s: %w", name, err)
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b)), ModTime: mtime}); err != nil {
		return fmt.Errorf("archive %s: %w", name, err)
	}
	if _, err := tw.Write(b); err != nil {
		return fmt.Errorf("archive %s: %w", name, err)
	}
	return nil
}

// sourceDateEpoch reads SOURCE_DATE_EPOCH (reproducible builds): empty is
// the Unix epoch.
func sourceDateEpoch(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q is not a Unix time", s)
	}
	return time.Unix(n, 0).UTC(), nil
}
