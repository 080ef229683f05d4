// Package webapp serves the built web app (web/app) at /: its hashed assets
// with long-lived caching, index.html for every client route (the app routes
// in the browser), all under the app's own strict Content-Security-Policy.
package webapp

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/qchat/qchat/internal/clientip"
)

// Policy is the app's Content-Security-Policy, before connect-src gains the
// page's own websocket origin. Everything comes from this origin; no inline
// script or style (the app uses class names only, so 'unsafe-inline' is not
// needed even for styles); images may be blob: and data: URLs made in the
// page (decrypted attachments); no page may frame the app.
const Policy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; font-src 'self'; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

const (
	// AssetPrefix holds Vite's content-hashed files: a new build gets new names.
	AssetPrefix = "/assets/"
	// Cached for a year and never revalidated: the name changes with the content.
	assetCache = "public, max-age=31536000, immutable"
	// index.html names the current assets: always revalidated.
	pageCache = "no-cache"
)

var (
	hostRe         = regexp.MustCompile(`^[A-Za-z0-9.\-]+(:[0-9]+)?$|^\[[0-9A-Fa-f:.]+\](:[0-9]+)?$`)
	inlineScriptRe = regexp.MustCompile(`(?is)<script\b[^>]*>\s*[^<\s]`)
	styleAttrRe    = regexp.MustCompile(`(?i)<[^>]+\sstyle\s*=`)
)

// New serves the app in fsys (index.html at its root, assets under assets/).
// It refuses a page with inline script or style, which the policy would block.
func New(fsys fs.FS) (http.Handler, error) {
	page, err := fs.ReadFile(fsys, "index.html")
	if err != nil {
		return nil, fmt.Errorf("web app: %w (run make web)", err)
	}
	if inlineScriptRe.Match(page) || styleAttrRe.Match(page) || bytes.Contains(page, []byte("<style")) {
		return nil, errors.New("web app: index.html has inline script or style, which the CSP blocks")
	}
	return &handler{fsys: fsys, page: page}, nil
}

type handler struct {
	fsys fs.FS
	page []byte
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	policy := Policy
	if hostRe.MatchString(r.Host) {
		// Spelled out: some browsers do not count websockets as 'self'.
		scheme := "ws://"
		if clientip.IsHTTPS(r) {
			scheme = "wss://"
		}
		policy = strings.Replace(policy, "connect-src 'self'", "connect-src 'self' "+scheme+r.Host, 1)
	}
	w.Header().Set("Content-Security-Policy", policy)

	p := path.Clean("/" + r.URL.Path)
	if path.Ext(p) == "" {
		// A client route (/, /room/…): the app decides what it shows.
		w.Header().Set("Cache-Control", pageCache)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		http.ServeContent(w, r, "index.html", time.Time{}, bytes.NewReader(h.page))
		return
	}
	name := strings.TrimPrefix(p, "/")
	b, err := fs.ReadFile(h.fsys, name)
	if err != nil || name == "index.html" {
		// A missing file is a 404, not the page: a stale asset URL must fail visibly.
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	if strings.HasPrefix(p, AssetPrefix) {
		w.Header().Set("Cache-Control", assetCache)
	} else {
		w.Header().Set("Cache-Control", pageCache)
	}
	if ct := mime.TypeByExtension(path.Ext(name)); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
}
