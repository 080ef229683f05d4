package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/Khan/genqlient/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/qchat/qchat/pqcrypto"
)

// The error codes the server puts in extensions.code (api-contract.md). They
// repeat the server's internal/apierr, which a public SDK must not import;
// codes_test.go proves the two lists equal.
const (
	CodeUnauthenticated     = "UNAUTHENTICATED"
	CodeForbidden           = "FORBIDDEN"
	CodeNotFound            = "NOT_FOUND"
	CodeBadUserInput        = "BAD_USER_INPUT"
	CodeConflict            = "CONFLICT"
	CodeRateLimited         = "RATE_LIMITED"
	CodeComplexityLimit     = "COMPLEXITY_LIMIT_EXCEEDED"
	CodeInternalServerError = "INTERNAL_SERVER_ERROR"
	// CodeSlowConsumer ends a subscription that fell too far behind; the
	// caller may subscribe again and catch up with History.
	CodeSlowConsumer = "SLOW_CONSUMER"
)

// Error is an error the server reported: a GraphQL error, an error message on
// a subscription, or a JSON error body of a plain HTTP endpoint. Callers
// branch on Code with errors.As.
type Error struct {
	Code       string         // extensions.code; "" if the server sent none
	Message    string         // the server's message
	Extensions map[string]any // everything in extensions, code included
	Path       string         // the GraphQL path of the failing field, if any
	Status     int            // the HTTP status, 0 on a websocket
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("qchat server: ")
	if e.Code != "" {
		b.WriteString(e.Code + ": ")
	}
	b.WriteString(e.Message)
	if e.Path != "" {
		b.WriteString(" (at " + e.Path + ")")
	}
	return b.String()
}

// StringList returns extensions[key] as strings, e.g. "missingUserIds".
func (e *Error) StringList(key string) []string {
	raw, _ := e.Extensions[key].([]any)
	out := make([]string, 0, len(raw))
	for _, v := range raw {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// HasCode reports whether err is (or wraps) an *Error with the given code.
func HasCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// isRecipientMismatch reports the error the server gives an envelope sealed
// for the wrong people or with outdated keys: the one case where fetching
// keys again and sealing again can succeed.
func isRecipientMismatch(err error) bool {
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeBadUserInput {
		return false
	}
	for _, k := range []string{"missingUserIds", "unexpectedUserIds", "staleKeyIds"} {
		if len(e.StringList(k)) > 0 {
			return true
		}
	}
	return false
}

// setInput sets a version 2 input field that the SDK always fills: a
// *string while the schema leaves it optional (the transition to version 2)
// and a string once it is required. genqlient makes a nullable input field a
// pointer and refuses a pointer on a required one, so the generated type
// changes with the schema; this keeps the SDK building across the switch.
func setInput[T any](field *T, v string) {
	switch f := any(field).(type) {
	case *string:
		*f = v
	case **string:
		*f = &v
	default:
		panic(fmt.Sprintf("client: setInput on a %T", field))
	}
}

// SetSignature sets the envelope's signature (standard base64), whichever
// type the schema gives the field (see setInput).
func (v *SendMessageInput) SetSignature(sig string) { setInput(&v.Signature, sig) }

// SetSignature sets the envelope's signature (standard base64), whichever
// type the schema gives the field (see setInput).
func (v *UploadDocumentInput) SetSignature(sig string) { setInput(&v.Signature, sig) }

func notFound(what string) error {
	return &Error{Code: CodeNotFound, Message: what + " not found", Extensions: map[string]any{"code": CodeNotFound}}
}

// Client talks to one QChat server as one user (or anonymously until
// Register or Login gives it a token). It is safe for concurrent use.
type Client struct {
	base *url.URL // server root, e.g. http://localhost:8080
	http *http.Client
	gql  graphql.Client

	mu       sync.Mutex
	token    string
	selfID   string                // cached id of the token's user; "" until needed
	identity *pqcrypto.IdentityKey // signs everything the client sends (envelope v2)

	pins       Pins           // what the caller trusts: see trust.go
	identities *identityCache // shared with the OverWebsocket clients made from this one
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client used for GraphQL, downloads and the
// websocket handshake (http.DefaultClient by default).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// WithToken authenticates the client with a session token from an earlier
// Register or Login.
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithSession is WithToken plus the id of the token's user, as Register or
// Login returned it: sealing names the sender, and a client that already
// knows who it is saves a round trip to ask (a third of a short-lived
// process's requests to send one message).
func WithSession(token, userID string) Option {
	return func(c *Client) { c.token, c.selfID = token, userID }
}

// WithIdentity sets the caller's identity key, which signs every message,
// document and KEM key the client sends. Register, SetIdentityKey and
// ResetIdentity set it themselves.
func WithIdentity(ik *pqcrypto.IdentityKey) Option { return func(c *Client) { c.identity = ik } }

// WithPins sets the trust store the client checks every recipient's and
// sender's keys against. Without it a client pins in memory, for its own
// lifetime only: a long-lived caller should give it a store that lasts.
func WithPins(p Pins) Option { return func(c *Client) { c.pins = p } }

// New returns a client of the server at serverURL (its root, without
// /graphql; e.g. "http://localhost:8080").
func New(serverURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(serverURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("client: server URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("client: server URL %q: want http://host[:port] or https://...", serverURL)
	}
	c := &Client{base: u, http: http.DefaultClient}
	for _, o := range opts {
		o(c)
	}
	if c.pins == nil {
		c.pins = NewMemoryPins()
	}
	c.identities = &identityCache{}
	c.gql = &transport{c: c}
	return c, nil
}

// Token is the current session token ("" when anonymous).
func (c *Client) Token() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token
}

// SetToken switches the client to another session ("" for anonymous).
func (c *Client) SetToken(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if token != c.token {
		c.token, c.selfID = token, ""
	}
}

// Identity is the caller's identity key, nil if it has none.
func (c *Client) Identity() *pqcrypto.IdentityKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.identity
}

// SetIdentity sets the caller's identity key (see WithIdentity).
func (c *Client) SetIdentity(ik *pqcrypto.IdentityKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.identity = ik
}

// Pins is the trust store the client checks keys against.
func (c *Client) Pins() Pins { return c.pins }

// ServerURL is the server root the client was made for.
func (c *Client) ServerURL() string { return c.base.String() }

func (c *Client) endpoint(path string) string {
	ref, err := url.Parse(path)
	if err != nil {
		return c.base.String() + path
	}
	return c.base.ResolveReference(ref).String()
}

// userID is the authenticated user's id, fetched once per token, because the
// envelope's aad names the sender.
func (c *Client) userID(ctx context.Context) (string, error) {
	c.mu.Lock()
	id := c.selfID
	c.mu.Unlock()
	if id != "" {
		return id, nil
	}
	u, err := c.Me(ctx)
	if err != nil {
		return "", err
	}
	return u.Id, nil
}

func (c *Client) rememberSelf(token, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == token {
		c.selfID = id
	}
}

// transport is the genqlient graphql.Client: JSON over POST /graphql with
// the bearer token, and server errors turned into *Error.
type transport struct {
	c *Client
	// files, when set, makes the request a GraphQL multipart request: each
	// key is an object path ("variables.input.file") whose value is sent as
	// a file part.
	files map[string][]byte
}

func (t *transport) MakeRequest(ctx context.Context, req *graphql.Request, resp *graphql.Response) error {
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("%s: encode request: %w", req.OpName, err)
	}
	contentType := "application/json"
	if len(t.files) > 0 {
		body, contentType, err = multipartBody(body, t.files)
		if err != nil {
			return fmt.Errorf("%s: %w", req.OpName, err)
		}
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, t.c.endpoint("/graphql"), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: %w", req.OpName, err)
	}
	hreq.Header.Set("Content-Type", contentType)
	hreq.Header.Set("Accept", "application/graphql-response+json, application/json")
	if tok := t.c.Token(); tok != "" {
		hreq.Header.Set("Authorization", "Bearer "+tok)
	}
	hresp, err := t.c.http.Do(hreq)
	if err != nil {
		return fmt.Errorf("%s: %w", req.OpName, err)
	}
	defer hresp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(hresp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s: read response: %w", req.OpName, err)
	}
	if err := json.Unmarshal(raw, resp); err != nil {
		return fmt.Errorf("%s: HTTP %d with a body that is not a GraphQL response: %.200q", req.OpName, hresp.StatusCode, raw)
	}
	if len(resp.Errors) > 0 {
		return fmt.Errorf("%s: %w", req.OpName, fromGQLError(resp.Errors[0], hresp.StatusCode))
	}
	if hresp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %w", req.OpName, &Error{Message: "HTTP " + hresp.Status, Status: hresp.StatusCode})
	}
	return nil
}

// multipartBody builds a request per the GraphQL multipart request spec:
// "operations" (the JSON request, file variables null), "map" (part name to
// variable path), then one part per file.
func multipartBody(operations []byte, files map[string][]byte) ([]byte, string, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if err := mw.WriteField("operations", string(operations)); err != nil {
		return nil, "", fmt.Errorf("multipart: %w", err)
	}
	m := make(map[string][]string, len(files))
	names := make(map[string]string, len(files))
	i := 0
	for path := range files {
		name := fmt.Sprint(i)
		m[name] = []string{path}
		names[path] = name
		i++
	}
	mj, err := json.Marshal(m)
	if err != nil {
		return nil, "", fmt.Errorf("multipart map: %w", err)
	}
	if err := mw.WriteField("map", string(mj)); err != nil {
		return nil, "", fmt.Errorf("multipart: %w", err)
	}
	for path, data := range files {
		// The file name is fixed: the real name travels as metadata in the
		// input, and the part holds ciphertext anyway.
		fw, err := mw.CreateFormFile(names[path], "sealed.bin")
		if err != nil {
			return nil, "", fmt.Errorf("multipart: %w", err)
		}
		if _, err := fw.Write(data); err != nil {
			return nil, "", fmt.Errorf("multipart: %w", err)
		}
	}
	if err := mw.Close(); err != nil {
		return nil, "", fmt.Errorf("multipart: %w", err)
	}
	return buf.Bytes(), mw.FormDataContentType(), nil
}

func fromGQLError(ge *gqlerror.Error, status int) *Error {
	e := &Error{Message: ge.Message, Extensions: ge.Extensions, Path: ge.Path.String(), Status: status}
	e.Code, _ = ge.Extensions["code"].(string)
	return e
}

// wireError is the error object of the JSON bodies the REST endpoints and
// websocket messages carry.
type wireError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

func (w wireError) toError(status int) *Error {
	e := &Error{Message: w.Message, Extensions: w.Extensions, Status: status}
	e.Code, _ = w.Extensions["code"].(string)
	if len(w.Path) > 0 {
		parts := make([]string, len(w.Path))
		for i, p := range w.Path {
			parts[i] = fmt.Sprint(p)
		}
		e.Path = strings.Join(parts, ".")
	}
	return e
}
