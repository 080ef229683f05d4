// Package explorer serves GraphiQL, the in-browser GraphQL IDE, from files
// embedded in the binary: the page works offline, behind a strict proxy and in
// an air-gapped deployment, and needs nothing from a CDN.
//
// static/vendor holds GraphiQL's and React's prebuilt browser files exactly as
// published on npm (versions in package.json and package-lock.json, listed in
// static/vendor/VERSIONS.txt); update.sh (`make graphiql`) refetches them.
// The rest of static/ is QChat's own: the page, its start-up script, its
// styles and the favicon.
package explorer

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// AssetPrefix is the URL path under which every file the page loads is served.
// It sits under /playground, not /, so that a web app can take / later
// without clashing with the explorer's files.
const AssetPrefix = "/playground/assets/"

//go:embed static
var static embed.FS

// contentTypes are the types the assets are served with, fixed here rather
// than taken from the operating system's MIME table, which differs between
// machines (.js is application/javascript on some).
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".txt":  "text/plain; charset=utf-8",
}

// ContentType is the Content-Type an asset named name is served with, or ""
// if the explorer serves no such kind of file.
func ContentType(name string) string { return contentTypes[path.Ext(name)] }

type asset struct {
	body        []byte
	contentType string
	etag        string
}

// Explorer serves the page and its assets.
type Explorer struct {
	page   asset
	assets map[string]asset // by path below AssetPrefix
}

// New reads the embedded files once. An error means the binary was built
// without them, or with a file of a type it would not know how to serve.
func New() (*Explorer, error) {
	e := &Explorer{assets: map[string]asset{}}
	err := fs.WalkDir(static, "static", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := static.ReadFile(name)
		if err != nil {
			return err
		}
		ct := ContentType(name)
		if ct == "" {
			return fmt.Errorf("%s: no content type for its extension", name)
		}
		sum := sha256.Sum256(body)
		a := asset{body: body, contentType: ct, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`}
		rel := strings.TrimPrefix(name, "static/")
		if rel == "index.html" {
			e.page = a
			return nil
		}
		e.assets[rel] = a
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("explorer: embedded files: %w", err)
	}
	if e.page.body == nil {
		return nil, fmt.Errorf("explorer: embedded files: no index.html")
	}
	return e, nil
}

// Page serves the GraphiQL page. It is the same for every request, so that
// the caller can derive a Content-Security-Policy from it once.
func (e *Explorer) Page() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { serve(w, r, "index.html", e.page) })
}

// Assets serves the page's files; mount it at AssetPrefix.
func (e *Explorer) Assets() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, AssetPrefix)
		a, ok := e.assets[name]
		if !ok || name == r.URL.Path {
			http.NotFound(w, r)
			return
		}
		serve(w, r, name, a)
	})
}

// serve answers with the asset's bytes, or 304 when the browser's copy is
// current. The files change only with the binary, and revalidating costs one
// small request, so browsers may keep them but must ask first ("no-cache"):
// an upgrade never leaves a page mixing old and new files.
func serve(w http.ResponseWriter, r *http.Request, name string, a asset) {
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
}
