package graph

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// postJSON is gqlgen's POST transport (transport.POST, whose Supports it
// keeps) with one change: the response is written without encoding/json. gqlgen
// hands the transport a response whose data it has just encoded itself, and
// json.Marshal validates and compacts every byte of it again: 11% of server
// CPU for history pages (50 messages, ~75 KB of JSON each). Errors and
// extensions, small and built by Go code, still go through json.Marshal.
type postJSON struct{ transport.POST }

const (
	contentJSON            = "application/json"
	contentGraphQLResponse = "application/graphql-response+json"
)

func (p postJSON) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	ctx := r.Context()
	ct := responseType(r.Header.Get("Accept"))
	w.Header().Set("Content-Type", ct)
	start := graphql.Now()
	buf := bodies.Get().(*bytes.Buffer)
	defer putBody(buf)
	if n := r.ContentLength; n > 0 && n <= maxPooledBody {
		buf.Grow(int(n) + bytes.MinRead) // ReadFrom wants MinRead free to see the end
	}
	if _, err := buf.ReadFrom(r.Body); err != nil {
		writeResponse(w, exec.DispatchError(ctx, gqlerror.List{gqlerror.Errorf("could not read request body: %+v", err)}))
		return
	}
	body := buf.Bytes()
	params := &graphql.RawParams{}
	if !decodeParams(body, params) {
		*params = graphql.RawParams{}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(params); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			writeResponse(w, exec.DispatchError(ctx, gqlerror.List{gqlerror.Errorf("json request body could not be decoded: %+v", err)}))
			return
		}
	}
	params.Headers = r.Header
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}
	rc, opErr := createOperationContext(ctx, exec, params)
	if opErr != nil {
		// As gqlgen: a request that is not a valid operation is 422, or 400
		// for clients that asked for application/graphql-response+json.
		if errcode.GetErrorKind(opErr) == errcode.KindProtocol {
			if ct == contentGraphQLResponse {
				w.WriteHeader(http.StatusBadRequest)
			} else {
				w.WriteHeader(http.StatusUnprocessableEntity)
			}
		}
		writeResponse(w, exec.DispatchError(graphql.WithOperationContext(ctx, rc), opErr))
		return
	}
	responses, ctx := exec.DispatchOperation(ctx, rc)
	writeResponse(w, responses(ctx))
}

// Request bodies are read into pooled buffers: io.ReadAll grew a fresh slice
// from 512 bytes by doubling, ~17 KB of garbage for a 5 KB sendMessage. The
// decoded parameters copy every string out of the body (both decoders do),
// so the buffer is free again once they are decoded; the deferred put is
// later still. Buffers that grew past maxPooledBody (a body near the 1 MiB
// limit) are left to the collector rather than kept. 256 KiB holds a
// sendMessage to a room of 100 (~160 KB, one recipient key of ~1.5 KB of
// base64 per member): at 64 KiB every such body was a fresh buffer,
// allocated and cleared (8.5% of the request's CPU with 50 keys).
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledBody = 256 << 10

func putBody(b *bytes.Buffer) {
	if b.Cap() <= maxPooledBody+bytes.MinRead {
		b.Reset()
		bodies.Put(b)
	}
}

// responseType picks the media type of the answer from the Accept header as
// gqlgen's POST does: application/json unless the client asks for
// application/graphql-response+json first.
func responseType(accept string) string {
	if accept == "" {
		return contentJSON
	}
	for part := range strings.SplitSeq(accept, ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "*/*", "application/*", contentJSON:
			return contentJSON
		case contentGraphQLResponse:
			return contentGraphQLResponse
		}
	}
	return contentGraphQLResponse
}

// writeResponse writes resp as json.Marshal would lay it out (errors, data,
// then the optional fields), with the data copied as gqlgen encoded it.
func writeResponse(w io.Writer, resp *graphql.Response) {
	if len(resp.Errors) == 0 && len(resp.Data) != 0 && resp.Label == "" && resp.Path == nil && resp.HasNext == nil && len(resp.Extensions) == 0 {
		// Data alone, the common case: written around rather than copied
		// (a history page is 100-350 KB).
		_, _ = io.WriteString(w, `{"data":`)
		_, _ = w.Write(resp.Data)
		_, _ = io.WriteString(w, `}`)
		return
	}
	_, _ = w.Write(appendResponse(make([]byte, 0, len(resp.Data)+64), resp))
}

// appendResponse appends resp encoded as writeResponse writes it.
func appendResponse(b []byte, resp *graphql.Response) []byte {
	b = append(b, '{')
	if len(resp.Errors) > 0 {
		errs, err := json.Marshal(resp.Errors)
		if err != nil {
			errs = []byte(`[{"message":"the error could not be encoded"}]`)
		}
		b = append(b, `"errors":`...)
		b = append(b, errs...)
		b = append(b, ',')
	}
	b = append(b, `"data":`...)
	if len(resp.Data) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, resp.Data...)
	}
	// The optional fields, by json.Marshal: {"data":null,...} minus its head.
	if resp.Label != "" || resp.Path != nil || resp.HasNext != nil || len(resp.Extensions) > 0 {
		rest, err := json.Marshal(&graphql.Response{Label: resp.Label, Path: resp.Path, HasNext: resp.HasNext, Extensions: resp.Extensions})
		if err == nil {
			b = append(b, rest[len(`{"data":null`):len(rest)-1]...)
		}
	}
	return append(b, '}')
}
