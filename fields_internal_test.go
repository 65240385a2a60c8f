package apitoken

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// BodyFieldNames returns the JSON names of bodyFields in their order, for
// the black-box tests (openapi_test.go). It is compiled only into tests.
func BodyFieldNames() []string {
	names := make([]string, len(bodyFields))
	for i, f := range bodyFields {
		names[i] = f.name
	}
	return names
}

// Every field of Update has its entry in bodyFields, in Update's order, named
// as the Token field of the same Go name is in JSON; so a field added to
// Update but not to the table fails here.
func TestBodyFieldsCoverUpdate(t *testing.T) {
	ut := reflect.TypeFor[Update]()
	if len(bodyFields) != ut.NumField() {
		t.Fatalf("bodyFields has %d entries, Update %d fields", len(bodyFields), ut.NumField())
	}
	if got := (Update{}).fields(); got != nil {
		t.Errorf("the zero Update: fields() = %v", got)
	}
	tt := reflect.TypeFor[Token]()
	for i := range ut.NumField() {
		sf := ut.Field(i)
		t.Run(sf.Name, func(t *testing.T) {
			var u Update
			reflect.ValueOf(&u).Elem().Field(i).FieldByName("Set").SetBool(true)
			if got, want := u.fields(), []string{bodyFields[i].name}; !slices.Equal(got, want) {
				t.Errorf("Update setting only %s: fields() = %v, want %v", sf.Name, got, want)
			}
			tf, ok := tt.FieldByName(sf.Name)
			if !ok {
				t.Fatalf("Token has no field %s", sf.Name)
			}
			if tag, _, _ := strings.Cut(tf.Tag.Get("json"), ","); tag != bodyFields[i].name {
				t.Errorf("bodyFields[%d] is %q, Token.%s is %q in JSON", i, bodyFields[i].name, sf.Name, tag)
			}
		})
	}
}

// Each entry's decoder, Update field and audit value agree: a member decoded
// into an Update and applied to a token shows, in the audit log, the JSON
// value it was given.
func TestBodyFieldsRoundTrip(t *testing.T) {
	samples := map[string]string{
		"name":              `"n"`,
		"description":       `"d"`,
		"user_id":           `"u"`,
		"active":            `true`,
		"rate_limit":        `7`,
		"allowed_endpoints": `["/a*"]`,
		"scopes":            `["read"]`,
		"metadata":          `{"k":"v"}`,
		"expires_at":        `"2030-01-02T03:04:05Z"`,
	}
	for _, f := range bodyFields {
		t.Run(f.name, func(t *testing.T) {
			raw, ok := samples[f.name]
			if !ok {
				t.Fatalf("no sample value for %q", f.name)
			}
			u, err := decodeFields(map[string]json.RawMessage{f.name: json.RawMessage(raw)})
			if err != nil {
				t.Fatal(err)
			}
			if got := u.fields(); !slices.Equal(got, []string{f.name}) {
				t.Errorf("decoding %s sets %v", f.name, got)
			}
			var tok Token
			applyByName(&tok, u)
			if got := f.value(&tok); string(got) != raw {
				t.Errorf("audit value after decoding %s = %s, want %s", raw, got, raw)
			}
			if _, ch := AuditChanges(ActionUpdate, &Token{}, &tok, u); len(ch) != 1 || ch[0].Field != f.name {
				t.Errorf("AuditChanges = %+v, want one change of %s", ch, f.name)
			}
		})
	}
}

// applyByName sets each field of t that u sets to u's value, matching them
// by Go name (storeutil.Apply is the stores' version; it imports this
// package, so this test cannot use it).
func applyByName(t *Token, u Update) {
	uv, tv := reflect.ValueOf(u), reflect.ValueOf(t).Elem()
	for i := range uv.NumField() {
		if f := uv.Field(i); f.FieldByName("Set").Bool() {
			tv.FieldByName(uv.Type().Field(i).Name).Set(f.FieldByName("Value"))
		}
	}
}
