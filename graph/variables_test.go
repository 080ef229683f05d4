package graph

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"
)

// TestVariableStandIns holds variableStandIns to gqlparser: whatever it
// checks itself, gqlparser's validator.VariableValues accepts and returns
// unchanged, and its stand-in passes VariableValues too; what gqlparser
// refuses or changes, it leaves to gqlparser. The variables are decoded as
// the POST transport decodes them.
func TestVariableStandIns(t *testing.T) {
	schema := NewExecutableSchema(Config{}).Schema()
	v := variableStandIns{schema: schema}
	const uuid = "0192f0c4-6f52-7c1a-9d7e-1a2b3c4d5e6f"
	key := `{"userId":"` + uuid + `","keyId":"` + uuid + `","kemCiphertext":"QUJD","wrappedKey":"REVG"}`
	input := func(fields string) string {
		return `{"id":"` + uuid + `","roomId":"` + uuid + `","ciphertext":"QUJD","nonce":"AAAA","signature":"c2ln"` + fields + `}`
	}
	cases := []struct {
		decl, value string
		checked     bool // whether variableStandIns checks it itself
	}{
		{"SendMessageInput!", input(`,"keys":[` + key + `,` + key + `]`), true},
		{"SendMessageInput!", input(`,"keys":[]`), true},
		{"SendMessageInput!", input(`,"keys":[],"recipientId":null,"attachmentId":null`), true},
		{"SendMessageInput!", input(`,"keys":[],"__typename":"SendMessageInput"`), true},
		{"SendMessageInput", `null`, true},
		{"[ID!]!", `["` + uuid + `","x"]`, true},
		{"[ID!]", `null`, true},
		{"[ID]!", `["a",null]`, true},
		// Left to gqlparser: errors ...
		{"SendMessageInput!", `null`, false},
		{"SendMessageInput!", input(``), false},
		{"SendMessageInput!", input(`,"keys":null`), false},
		{"SendMessageInput!", input(`,"keys":[null]`), false},
		{"SendMessageInput!", input(`,"keys":[{"userId":"u","keyId":"k","kemCiphertext":"x"}]`), false},
		{"SendMessageInput!", input(`,"keys":[{"userId":"u","keyId":"k","kemCiphertext":"x","wrappedKey":1}]`), false},
		{"SendMessageInput!", input(`,"keys":[],"extra":1`), false},
		{"SendMessageInput!", input(`,"keys":[],"id":true`), false},
		{"SendMessageInput!", `"a string"`, false},
		{"SendMessageInput!", `[` + input(`,"keys":[]`) + `]`, false},
		{"[ID!]!", `["a",null]`, false},
		{"[ID!]!", `{"a":1}`, false},
		// ... and what it coerces: numbers as ids, a value for a list.
		{"SendMessageInput!", input(`,"keys":[{"userId":7,"keyId":"k","kemCiphertext":"x","wrappedKey":"y"}]`), false},
		{"SendMessageInput!", input(`,"keys":` + key), false},
		{"[ID!]!", `[1,2]`, false},
		{"[ID!]!", `"a"`, false},
		{"[Int!]!", `[1,2]`, false},
	}
	for i, tc := range cases {
		t.Run(fmt.Sprintf("%d %s %.40s", i, tc.decl, tc.value), func(t *testing.T) {
			var p graphql.RawParams
			if !decodeParams([]byte(`{"variables":{"v":`+tc.value+`}}`), &p) {
				t.Fatal("not decoded")
			}
			op := varOperation(t, schema, tc.decl)
			def := op.VariableDefinitions[0]
			checked := v.valid(def.Type, p.Variables["v"], 0)
			if checked != tc.checked {
				t.Fatalf("checked here: %v, want %v", checked, tc.checked)
			}
			want := clone(t, p.Variables)
			got, err := validator.VariableValues(schema, op, p.Variables)
			if !checked {
				return
			}
			if err != nil {
				t.Fatalf("checked here, but gqlparser refuses it: %v", err)
			}
			if !reflect.DeepEqual(got["v"], want["v"]) {
				t.Fatalf("checked here, but gqlparser coerces it:\n%#v\n%#v", got["v"], want["v"])
			}
			standIn, ok := v.standIn(def.Type, 0)
			if !ok {
				t.Fatal("no stand-in")
			}
			if _, err := validator.VariableValues(schema, op, map[string]any{"v": standIn}); err != nil {
				t.Fatalf("stand-in %#v refused: %v", standIn, err)
			}
		})
	}
}

// TestVariableStandInsEveryInput builds a stand-in for every input object
// and list argument of the schema and has gqlparser accept it.
func TestVariableStandInsEveryInput(t *testing.T) {
	schema := NewExecutableSchema(Config{}).Schema()
	v := variableStandIns{schema: schema}
	n := 0
	for _, def := range schema.Types {
		if def.Kind != ast.InputObject || strings.HasPrefix(def.Name, "__") {
			continue
		}
		for _, decl := range []string{def.Name + "!", "[" + def.Name + "!]!", def.Name} {
			op := varOperation(t, schema, decl)
			standIn, ok := v.standIn(op.VariableDefinitions[0].Type, 0)
			if !ok {
				t.Fatalf("%s: no stand-in", decl)
			}
			if _, err := validator.VariableValues(schema, op, map[string]any{"v": standIn}); err != nil {
				t.Fatalf("%s: stand-in %#v refused: %v", decl, standIn, err)
			}
			n++
		}
	}
	if n == 0 {
		t.Fatal("no input objects")
	}
}

// varOperation parses and validates `query($v: decl) { __typename }`.
func varOperation(t *testing.T, schema *ast.Schema, decl string) *ast.OperationDefinition {
	t.Helper()
	doc, err := parser.ParseQuery(&ast.Source{Input: "query($v: " + decl + ") { __typename }"})
	if err != nil {
		t.Fatal(err)
	}
	// The variable is unused; only its definition matters here, and
	// VariableValues needs the definition's type filled in by validation.
	for _, e := range validator.ValidateWithRules(schema, doc, nil) {
		if !strings.Contains(e.Message, "never used") {
			t.Fatal(e)
		}
	}
	return doc.Operations[0]
}

// clone deep-copies decoded JSON (gqlparser writes into the maps it checks).
func clone(t *testing.T, v map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.UseNumber()
	if err := d.Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}
