package chat

import (
	"crypto/rand"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/qchat/qchat/models"
	"github.com/qchat/qchat/pqcrypto"
)

// Input limits.
const (
	maxPageSize    = models.MaxPageSize
	defaultPage    = 50
	maxRoomName    = 100
	maxIDsPerQuery = 100
	maxMarkRead    = 500
	maxRoomMembers = models.MaxRoomMembers
)

var usernameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,32}$`)

// checkID rejects ids that are not lower-case canonical UUIDs: nothing else can
// name an object, and client-generated ids enter the envelope's aad as sent.
func checkID(field, id string) error {
	if !pqcrypto.IsCanonicalUUID(id) {
		return models.Invalid("%s: must be a lower-case UUID", field)
	}
	return nil
}

// checkIDs checks a list of ids and its length.
func checkIDs(field string, ids []string, limit int) error {
	if len(ids) > limit {
		return models.Invalid("%s: at most %d ids", field, limit)
	}
	for _, id := range ids {
		if err := checkID(field, id); err != nil {
			return err
		}
	}
	return nil
}

func checkRoomName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return "", models.Invalid("name: must not be empty")
	}
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > maxRoomName {
		return "", models.Invalid("name: at most %d characters of valid UTF-8", maxRoomName)
	}
	if err := checkVisible("name", name); err != nil {
		return "", err
	}
	return name, nil
}

// hidden are the characters a name must not hold because they make it show
// other than it reads: control characters (Cc), format characters (Cf: the
// bidirectional overrides and isolates that turn "invoice\u202Efdp.exe" into
// "invoiceexe.pdf", zero-width spaces and joiners, soft hyphens, tag
// characters) and the line and paragraph separators. The price: emoji that
// are built with a zero-width joiner (a family, a profession) are refused
// in names too.
var hidden = []*unicode.RangeTable{unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp}

// checkVisible refuses a name holding a hidden character, naming the field
// and the character.
func checkVisible(field, s string) error {
	for _, c := range s {
		if unicode.IsOneOf(hidden, c) {
			return models.InvalidField(field, fmt.Sprintf("%s: must not contain control or invisible formatting characters (found U+%04X)", field, c))
		}
	}
	return nil
}

// maxUsernameInput bounds the bytes normalised: 32 characters of what NFKC
// folds to ASCII (fullwidth letters) take 3 bytes each.
const maxUsernameInput = 4 * 32

// canonicalUsername is the form a username is stored, unique (case-folded:
// db.UsernameKey) and looked up in, or ok=false if there is none. NFKC folds
// the compatibility forms of ASCII letters and digits (fullwidth "ａｌｉｃｅ",
// the ligature "ﬁ", the Kelvin sign, superscript digits) into the ASCII they
// stand for, so that they name the account they look like; every other
// non-ASCII character fails usernameRE, so Cyrillic or Greek look-alikes of
// a name cannot be registered at all.
func canonicalUsername(s string) (name string, ok bool) {
	if len(s) > maxUsernameInput {
		return "", false
	}
	name = norm.NFKC.String(s)
	return name, usernameRE.MatchString(name)
}

func pageSize(first *int) (int, error) {
	if first == nil {
		return defaultPage, nil
	}
	if *first < 1 || *first > maxPageSize {
		return 0, models.Invalid("first: must be between 1 and %d", maxPageSize)
	}
	return *first, nil
}

// Invite codes use an alphabet without look-alikes (0/O, 1/I/L).
const codeAlphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
const codeLength = 8

func newRoomCode() (string, error) {
	b := make([]byte, codeLength)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	for i := range b {
		// 256 % 31 bias is negligible for invite codes that are also rate limited.
		b[i] = codeAlphabet[int(b[i])%len(codeAlphabet)]
	}
	return string(b), nil
}

// normalizeCode reads an invite code as a person typed it.
func normalizeCode(code string) (string, error) {
	code = strings.ToUpper(strings.TrimSpace(code))
	if len(code) != codeLength {
		return "", models.Invalid("code: must be %d characters", codeLength)
	}
	for _, c := range code {
		if !strings.ContainsRune(codeAlphabet, c) {
			return "", models.Invalid("code: not an invite code")
		}
	}
	return code, nil
}
