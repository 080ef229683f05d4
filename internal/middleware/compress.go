package middleware

import (
	"fmt"
	"mime"
	"net/http"
	"strings"

	"github.com/klauspost/compress/gzhttp"
	"github.com/klauspost/compress/gzip"
)

const (
	// compressMinSize: below 8 KiB the CPU outweighs the bytes saved. The
	// busiest responses of that size are sendMessage's: one message, mostly
	// base64 of random bytes (the sender's own key, and for a signed message
	// its ML-DSA-65 signature, 4.4 KB of base64 alone), which gzip shrinks
	// by a quarter at most. At 1 KiB, gzipping the unsigned answers (~2.2
	// KB) cost ~5% of the server's CPU under qchat-load's dm scenario; at
	// 4 KiB the signed ones (~6.5 KB) were gzipped again, ~7% of the
	// server's CPU, ~35–50 µs per message, to save ~1.6 KB. Pages of
	// messages, larger, are still compressed (docs/PERFORMANCE.md).
	compressMinSize = 8192
	// compressLevel is Huffman coding alone, no matching: most of a large
	// answer (a history page) is base64 — ciphertext, signatures, KEM
	// ciphertexts — which shrinks by its alphabet (6 bits of 8), not by
	// repetition. On a real page of 50 signed messages (the SDK's query,
	// 353 KB) it keeps 76% of the bytes in 0.63 ms, where stateless deflate
	// kept 100% (it stored the blocks) in 1.16 ms and level 6 71% in 2.6 ms
	// (TestCompressHistoryPage, docs/PERFORMANCE.md).
	compressLevel = gzip.HuffmanOnly
	// NoCompressionHeader in a request turns compression off for its
	// response, for clients measuring raw sizes or debugging.
	NoCompressionHeader = "X-No-Compression"
)

// Compress gzips responses over 8 KiB (Huffman coding only) for clients that accept it.
//
// It stays out of the way of: requests with an x-no-compression header;
// websocket upgrades (the connection is hijacked, and frames have their own
// compression setting); and application/octet-stream responses, which are
// document ciphertext — random bytes that do not shrink and are streamed,
// where buffering for a size decision would only add latency. Other already
// compressed types (images, archives) are skipped too. Only gzip is offered
// (gzhttp would also negotiate zstd) so that every client and proxy on the
// path understands the answer.
//
// Bearer tokens travel in a header, not in cookies, so a BREACH-style attack
// (guessing a secret from the size of compressed responses to forged
// requests) has no ambient credential to work with.
func Compress() (func(http.Handler) http.Handler, error) {
	wrap, err := gzhttp.NewWrapper(
		gzhttp.MinSize(compressMinSize),
		gzhttp.CompressionLevel(compressLevel),
		gzhttp.EnableZstd(false),
		gzhttp.ContentTypeFilter(compressible),
	)
	if err != nil {
		return nil, fmt.Errorf("compress: %w", err)
	}
	return func(next http.Handler) http.Handler {
		compressed := wrap(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get(NoCompressionHeader) != "" || isUpgrade(r) {
				next.ServeHTTP(w, r)
				return
			}
			compressed.ServeHTTP(w, r)
		})
	}, nil
}

func compressible(contentType string) bool {
	if mt, _, err := mime.ParseMediaType(contentType); err == nil && mt == "application/octet-stream" {
		return false
	}
	return gzhttp.DefaultContentTypeFilter(contentType)
}

// isUpgrade recognises a protocol upgrade (websocket) request.
func isUpgrade(r *http.Request) bool {
	if r.Header.Get("Upgrade") == "" {
		return false
	}
	for _, v := range r.Header.Values("Connection") {
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return true
			}
		}
	}
	return false
}
