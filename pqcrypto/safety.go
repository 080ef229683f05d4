package pqcrypto

import (
	"crypto/sha512"
	"errors"
	"fmt"
	"strings"
)

// safetyRounds is the number of further SHA-512 rounds: a brute-force search
// for a key whose digits collide with a victim's pays them for every try.
const safetyRounds = 5200

// SafetyNumber is the 60-digit number two users compare to check that each
// holds the other's real identity key. It is symmetric: both users compute
// the same digits whichever of them is a. FormatSafetyNumber groups it for
// display.
func SafetyNumber(uidA string, ikA []byte, uidB string, ikB []byte) (string, error) {
	if uidA == "" || uidB == "" {
		return "", errors.New("pqcrypto: safety number: empty user id")
	}
	// With one id the order of the halves would depend on who computes it.
	if uidA == uidB {
		return "", errors.New("pqcrypto: safety number: both user ids are the same")
	}
	for _, ik := range [][]byte{ikA, ikB} {
		if len(ik) != IdentityPublicKeySize {
			return "", fmt.Errorf("pqcrypto: safety number: identity key must be %d bytes, got %d", IdentityPublicKeySize, len(ik))
		}
	}
	a, b := safetyDigits(uidA, ikA), safetyDigits(uidB, ikB)
	if uidB < uidA { // Go compares strings bytewise, as the spec sorts
		a, b = b, a
	}
	return a + b, nil
}

// safetyDigits is one user's 30 digits.
func safetyDigits(uid string, ik []byte) string {
	h := sha512.New()
	h.Write([]byte("qchat/v2/safety"))
	h.Write([]byte{0})
	h.Write([]byte(uid))
	h.Write([]byte{0})
	h.Write(ik)
	sum := h.Sum(nil)
	for range safetyRounds {
		h.Reset()
		h.Write(sum)
		h.Write(ik)
		sum = h.Sum(sum[:0])
	}
	var sb strings.Builder
	for i := range 6 {
		var n uint64
		for _, c := range sum[i*5 : i*5+5] {
			n = n<<8 | uint64(c)
		}
		fmt.Fprintf(&sb, "%05d", n%100000)
	}
	return sb.String()
}

// FormatSafetyNumber writes a safety number as twelve groups of five digits
// separated by single spaces, the way users read it to each other.
func FormatSafetyNumber(number string) string {
	var sb strings.Builder
	for i := 0; i < len(number); i += 5 {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(number[i:min(i+5, len(number))])
	}
	return sb.String()
}
