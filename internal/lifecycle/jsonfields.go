package lifecycle

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"sort"
	"strconv"
)

// JSON helpers that keep the raw form of each value, so a field of the wrong
// type is reported by name instead of as a Go unmarshalling error.

// jsonKind names the JSON type of raw, as error messages spell it.
func jsonKind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

// fields decodes a JSON object, or says what raw is instead.
func fields(raw json.RawMessage) (map[string]json.RawMessage, string) {
	if k := jsonKind(raw); k != "object" {
		return nil, "must be an object, got " + k
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, "must be an object: " + err.Error()
	}
	return m, ""
}

// unknownField returns the first (sorted) key of m not in known, or "".
func unknownField(m map[string]json.RawMessage, known ...string) string {
	var extra []string
	for k := range m {
		if !slices.Contains(known, k) {
			extra = append(extra, k)
		}
	}
	if len(extra) == 0 {
		return ""
	}
	sort.Strings(extra)
	return extra[0]
}

// jsonString decodes a string value, or says what raw is instead.
func jsonString(raw json.RawMessage) (string, string) {
	if k := jsonKind(raw); k != "string" {
		return "", "must be a string, got " + k
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", "must be a string: " + err.Error()
	}
	return s, ""
}

// jsonPositiveInt decodes an integer in [1, MaxInt32] (the API's integers
// are 32-bit), or says why raw is not one.
func jsonPositiveInt(raw json.RawMessage) (int, string) {
	if k := jsonKind(raw); k != "number" {
		return 0, "must be a positive integer, got " + k
	}
	text := string(bytes.TrimSpace(raw))
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return 0, "must be a positive integer, got " + text
	}
	if n < 1 || n > math.MaxInt32 {
		return 0, "must be between 1 and " + strconv.Itoa(math.MaxInt32) + ", got " + text
	}
	return int(n), ""
}

// jsonStrings decodes a non-empty array of non-empty strings; on failure it
// returns the index of the bad element (-1 for the array itself) and why.
func jsonStrings(raw json.RawMessage) ([]string, int, string) {
	if k := jsonKind(raw); k != "array" {
		return nil, -1, "must be an array of strings, got " + k
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, -1, "must be an array of strings: " + err.Error()
	}
	if len(items) == 0 {
		return nil, -1, "must not be empty"
	}
	out := make([]string, 0, len(items))
	for i, item := range items {
		s, msg := jsonString(item)
		if msg != "" {
			return nil, i, msg
		}
		if s == "" {
			return nil, i, "must not be empty"
		}
		out = append(out, s)
	}
	return out, 0, ""
}
