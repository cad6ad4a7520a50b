package node

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// InstallBinaries copies every regular file of src into dst, the runtime's
// CNI bin dir, when its content differs, and returns the names it copied.
// Each copy goes to a temporary file in dst that is renamed into place, so a
// runtime never executes a half-written plugin and running ones keep theirs.
func InstallBinaries(src, dst string) ([]string, error) {
	entries, err := os.ReadDir(src)
	if err != nil {
		return nil, fmt.Errorf("read source bin dir: %w", err)
	}
	var installed []string
	var errs []error
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		copied, err := installOne(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name()))
		if err != nil {
			errs = append(errs, fmt.Errorf("install %s: %w", e.Name(), err))
		} else if copied {
			installed = append(installed, e.Name())
		}
	}
	return installed, errors.Join(errs...)
}

func installOne(src, dst string) (bool, error) {
	want, err := fileDigest(src)
	if err != nil {
		return false, err
	}
	if have, err := fileDigest(dst); err == nil && have == want {
		return false, nil
	}
	in, err := os.Open(src)
	if err != nil {
		return false, fmt.Errorf("open source: %w", err)
	}
	defer in.Close()
	return true, writeAtomic(dst, 0o755, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}

func fileDigest(path string) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	f, err := os.Open(path)
	if err != nil {
		return sum, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return sum, fmt.Errorf("read %s: %w", path, err)
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

// writeFileIfChanged writes data to path atomically unless it already holds
// exactly data; it reports whether it wrote.
func writeFileIfChanged(path string, data []byte, perm fs.FileMode) (bool, error) {
	if cur, err := os.ReadFile(path); err == nil && bytes.Equal(cur, data) {
		return false, nil
	}
	return true, writeAtomic(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// writeAtomic writes a dot-prefixed temporary file next to path (so the
// runtime's *.conflist glob never sees it), syncs it and renames it over
// path.
func writeAtomic(path string, perm fs.FileMode, write func(io.Writer) error) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temporary file: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()           //nolint:errcheck // already failing
			os.Remove(tmp.Name()) //nolint:errcheck // best effort
		}
	}()
	if err := write(tmp); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(perm); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename into %s: %w", path, err)
	}
	return nil
}
