// Package app is the QChat web app, built by Vite from src/ into dist/
// (`make web`), which is committed and embedded here so that the server binary
// stays one file and `make run` needs only Go. internal/webapp serves it.
package app

import (
	"embed"
	"io/fs"
)

//go:embed all:dist
var dist embed.FS

// Dist is the built app: index.html and the hashed files under assets/.
func Dist() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // "dist" is a valid path: unreachable
	}
	return sub
}
