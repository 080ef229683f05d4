package middleware

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sync/atomic"

	"github.com/qchat/qchat/internal/apierr"
)

// BodyLimit caps request bodies: multipart/form-data (uploads) at
// maxMultipart bytes, anything else (GraphQL JSON) at maxJSON. Over the limit
// the answer is HTTP 413 with a GraphQL-shaped BAD_USER_INPUT error.
//
// A declared Content-Length over the limit is refused before a byte is read.
// Bodies of unknown length (chunked) are handled by kind:
//
//   - JSON is read into memory up to the limit here (at most 1 MiB), because
//     gqlgen's POST transport answers a failed body read with HTTP 200 and an
//     error, not 413.
//   - Multipart is streamed through http.MaxBytesReader, as uploads are too
//     big to buffer. gqlgen's multipart transport answers a failed read with
//     422; when the failure was our limit, that answer is replaced by ours.
//
// MaxBytesReader also tells net/http to close the connection after the
// answer, so a client cannot keep streaming an oversized body into it.
func BodyLimit(maxJSON, maxMultipart int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
				next.ServeHTTP(w, r)
				return
			}
			limit := maxJSON
			multipart := isMultipart(r)
			if multipart {
				limit = maxMultipart
			}
			if r.ContentLength > limit {
				tooLarge(w, limit)
				return
			}
			if r.ContentLength > 0 {
				// net/http stops at the declared length; the reader only
				// guards against a handler that trusts something else.
				r.Body = http.MaxBytesReader(w, r.Body, limit)
				next.ServeHTTP(w, r)
				return
			}
			if !multipart {
				body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
				if err != nil {
					var mbe *http.MaxBytesError
					if errors.As(err, &mbe) {
						tooLarge(w, limit)
						return
					}
					writeError(w, http.StatusBadRequest, "could not read request body", map[string]any{"code": apierr.CodeBadUserInput})
					return
				}
				r.Body = io.NopCloser(bytes.NewReader(body))
				r.ContentLength = int64(len(body))
				next.ServeHTTP(w, r)
				return
			}
			lb := &limitedBody{ReadCloser: http.MaxBytesReader(w, r.Body, limit)}
			r.Body = lb
			next.ServeHTTP(&tooLargeWriter{ResponseWriter: w, body: lb, limit: limit}, r)
		})
	}
}

func isMultipart(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "multipart/form-data"
}

func tooLarge(w http.ResponseWriter, limit int64) {
	writeError(w, http.StatusRequestEntityTooLarge,
		fmt.Sprintf("request body too large (limit %d bytes)", limit),
		map[string]any{"code": apierr.CodeBadUserInput})
}

// limitedBody remembers that the limit was hit, whatever the handler does
// with the error afterwards.
type limitedBody struct {
	io.ReadCloser
	exceeded atomic.Bool
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	var mbe *http.MaxBytesError
	if err != nil && errors.As(err, &mbe) {
		b.exceeded.Store(true)
	}
	return n, err
}

// tooLargeWriter swaps the handler's answer for our 413 once the body went
// over the limit, and discards what the handler writes after that.
type tooLargeWriter struct {
	http.ResponseWriter
	body     *limitedBody
	limit    int64
	started  bool
	replaced bool
}

func (t *tooLargeWriter) check() {
	if t.started {
		return
	}
	t.started = true
	if t.body.exceeded.Load() {
		t.replaced = true
		tooLarge(t.ResponseWriter, t.limit)
	}
}

func (t *tooLargeWriter) WriteHeader(status int) {
	t.check()
	if !t.replaced {
		t.ResponseWriter.WriteHeader(status)
	}
}

func (t *tooLargeWriter) Write(p []byte) (int, error) {
	t.check()
	if t.replaced {
		return len(p), nil
	}
	return t.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach Flush and deadlines.
func (t *tooLargeWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }
