// Package respwriter records what a handler answered, for the logging and
// metrics middleware, without hiding the ResponseWriter's optional interfaces.
package respwriter

import (
	"net/http"
)

// Recorder wraps an http.ResponseWriter and remembers the status and the body
// size. It implements Unwrap so that http.ResponseController and
// coder/websocket still reach the Hijacker and Flusher underneath: a wrapper
// that hid them would break websocket upgrades and streaming responses.
type Recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

// New wraps w.
func New(w http.ResponseWriter) *Recorder { return &Recorder{ResponseWriter: w} }

// WriteHeader records the first status written; informational statuses other
// than 101 are not final, so they do not count.
func (r *Recorder) WriteHeader(code int) {
	if r.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (r *Recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Flush passes a flush down (SSE and multipart responses need it).
func (r *Recorder) Flush() {
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}

// Unwrap returns the wrapped writer for http.ResponseController.
func (r *Recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Status is the status the handler answered; 200 if it wrote nothing, as
// net/http does.
func (r *Recorder) Status() int {
	if r.status == 0 {
		return http.StatusOK
	}
	return r.status
}

// Bytes is the number of body bytes written.
func (r *Recorder) Bytes() int64 { return r.bytes }

// Upgraded reports whether the connection switched protocols (a websocket).
func (r *Recorder) Upgraded() bool { return r.status == http.StatusSwitchingProtocols }
