package admin

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"gorestate.dev/shared/serdejson"
)

// Rendering of query results the way Restate's DataFusion answers them: JSON rows with NULLs
// left out, booleans as booleans, binary as hex and timestamps as RFC 3339 strings; or an
// Arrow IPC stream.

// isBool reports whether column c holds booleans. SQLite has no boolean type: a column read
// straight from a BOOLEAN table column says so in its declared type, a boolean expression
// ("dp.id IS NOT NULL as pinned_deployment_exists", "1 = 1") is found in the query's text
// (booleanItems).
func (r *queryResult) isBool(c int) bool {
	return r.decls[c] == declBool || c < len(r.booleans) && r.booleans[c]
}

// json renders {"rows":[{column: value, …}]} with columns in query order.
func (r *queryResult) json() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(`{"rows":[`)
	for i, row := range r.rows {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteByte('{')
		first := true
		for c, v := range row {
			val, ok, err := r.jsonValue(c, v)
			if err != nil {
				return nil, fmt.Errorf("column %s: %w", r.names[c], err)
			}
			if !ok {
				continue
			}
			if !first {
				buf.WriteByte(',')
			}
			first = false
			name, _ := json.Marshal(r.names[c])
			buf.Write(name)
			buf.WriteByte(':')
			buf.Write(val)
		}
		buf.WriteByte('}')
	}
	buf.WriteString("]}")
	return buf.Bytes(), nil
}

// jsonValue encodes one value; ok is false for NULL (and non-finite floats, which JSON cannot
// carry), which Restate leaves out of the row.
func (r *queryResult) jsonValue(c int, v any) (b []byte, ok bool, err error) {
	switch x := v.(type) {
	case nil:
		return nil, false, nil
	case int64:
		if r.isBool(c) {
			return []byte(strconv.FormatBool(x != 0)), true, nil
		}
		if r.decls[c] == declU64 {
			return []byte(strconv.FormatUint(uint64(x), 10)), true, nil
		}
		return []byte(strconv.FormatInt(x, 10)), true, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, false, nil
		}
		return []byte(strconv.FormatFloat(x, 'g', -1, 64)), true, nil
	case bool:
		return []byte(strconv.FormatBool(x)), true, nil
	case []byte:
		b, err := json.Marshal(hex.EncodeToString(x))
		return b, true, err
	case time.Time:
		b, err := json.Marshal(x.UTC().Format(timeLayout))
		return b, true, err
	case string:
		if (r.decls[c] == declList || r.decls[c] == declU32List) && json.Valid([]byte(x)) {
			return []byte(x), true, nil
		}
		return serdejson.AppendString(nil, x), true, nil
	}
	b, err = json.Marshal(v)
	return b, true, err
}

// arrow renders the result as an Arrow IPC stream: the schema, then one record batch.
func (r *queryResult) arrow() ([]byte, error) {
	fields := make([]arrow.Field, len(r.names))
	for c := range r.names {
		fields[c] = arrow.Field{Name: r.names[c], Type: r.arrowType(c), Nullable: true}
	}
	schema := arrow.NewSchema(fields, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for c := range r.names {
		appendColumn(b.Field(c), r.rows, c)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	var out bytes.Buffer
	w := ipc.NewWriter(&out, ipc.WithSchema(schema), ipc.WithAllocator(memory.DefaultAllocator))
	if err := w.Write(rec); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// timestampType is Restate's timestamp column type: milliseconds, UTC ("+00:00").
var timestampType = &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "+00:00"}

// The list column types: lists in Arrow, as Restate sends them, so that clients show
// sys_deployment.services as a list, not as the JSON text we store. (Restate's strings are
// LargeUtf8; ours are Utf8 throughout.)
var (
	stringListType = arrow.ListOf(arrow.BinaryTypes.String)
	u32ListType    = arrow.ListOf(arrow.PrimitiveTypes.Uint32)
)

// arrowType picks column c's Arrow type from its declared type, or for expressions from its
// values; a column whose values do not all fit falls back to strings.
func (r *queryResult) arrowType(c int) arrow.DataType {
	var want arrow.DataType
	switch {
	case r.isBool(c):
		want = arrow.FixedWidthTypes.Boolean
	case r.decls[c] == declInt:
		want = arrow.PrimitiveTypes.Int64
	case r.decls[c] == declU64:
		want = arrow.PrimitiveTypes.Uint64
	case r.decls[c] == declBlob:
		want = arrow.BinaryTypes.Binary
	case r.decls[c] == declTime:
		want = timestampType
	case r.decls[c] == declList:
		want = stringListType
	case r.decls[c] == declU32List:
		want = u32ListType
	case r.decls[c] == declText:
		want = arrow.BinaryTypes.String
	default:
		want = inferArrowType(r.rows, c)
	}
	for _, row := range r.rows {
		if row[c] != nil && !fits(want, row[c]) {
			return arrow.BinaryTypes.String
		}
	}
	return want
}

func inferArrowType(rows [][]any, c int) arrow.DataType {
	var ints, floats, blobs, other int
	for _, row := range rows {
		switch row[c].(type) {
		case nil:
		case int64:
			ints++
		case float64:
			floats++
		case []byte:
			blobs++
		default:
			other++
		}
	}
	switch {
	case other > 0:
		return arrow.BinaryTypes.String
	case floats > 0 && blobs == 0:
		return arrow.PrimitiveTypes.Float64
	case ints > 0 && blobs == 0:
		return arrow.PrimitiveTypes.Int64
	case blobs > 0 && ints == 0:
		return arrow.BinaryTypes.Binary
	}
	return arrow.BinaryTypes.String
}

// fits reports whether v can be appended to a column of type t.
func fits(t arrow.DataType, v any) bool {
	switch t.ID() {
	case arrow.BOOL, arrow.INT64, arrow.UINT64:
		_, ok := v.(int64)
		return ok
	case arrow.FLOAT64:
		switch v.(type) {
		case int64, float64:
			return true
		}
		return false
	case arrow.BINARY:
		_, ok := v.([]byte)
		return ok
	case arrow.TIMESTAMP:
		_, ok := arrowTime(v)
		return ok
	case arrow.LIST:
		_, ok := listItems(t, v)
		return ok
	}
	return true // strings take anything
}

// listItems decodes a stored list (JSON text) into the items of list type t: []*string
// or []*uint32, nil items being NULLs.
func listItems(t arrow.DataType, v any) (any, bool) {
	s, ok := v.(string)
	if !ok {
		return nil, false
	}
	if arrow.TypeEqual(t, u32ListType) {
		var items []*uint32
		return items, json.Unmarshal([]byte(s), &items) == nil && items != nil
	}
	var items []*string
	return items, json.Unmarshal([]byte(s), &items) == nil && items != nil
}

func arrowTime(v any) (time.Time, bool) {
	switch x := v.(type) {
	case time.Time:
		return x, true
	case string:
		t, err := time.Parse(time.RFC3339Nano, x)
		return t, err == nil
	}
	return time.Time{}, false
}

func appendColumn(fb array.Builder, rows [][]any, c int) {
	for _, row := range rows {
		v := row[c]
		if v == nil {
			fb.AppendNull()
			continue
		}
		switch b := fb.(type) {
		case *array.BooleanBuilder:
			b.Append(v.(int64) != 0)
		case *array.Int64Builder:
			b.Append(v.(int64))
		case *array.Uint64Builder:
			b.Append(uint64(v.(int64)))
		case *array.Float64Builder:
			if i, ok := v.(int64); ok {
				b.Append(float64(i))
			} else {
				b.Append(v.(float64))
			}
		case *array.BinaryBuilder:
			b.Append(v.([]byte))
		case *array.TimestampBuilder:
			t, _ := arrowTime(v)
			b.Append(arrow.Timestamp(t.UnixMilli()))
		case *array.StringBuilder:
			b.Append(displayValue(v))
		case *array.ListBuilder:
			items, _ := listItems(b.Type().(*arrow.ListType), v)
			b.Append(true)
			appendItems(b.ValueBuilder(), items)
		}
	}
}

func appendItems(vb array.Builder, items any) {
	switch xs := items.(type) {
	case []*string:
		sb := vb.(*array.StringBuilder)
		for _, x := range xs {
			if x == nil {
				sb.AppendNull()
			} else {
				sb.Append(*x)
			}
		}
	case []*uint32:
		ub := vb.(*array.Uint32Builder)
		for _, x := range xs {
			if x == nil {
				ub.AppendNull()
			} else {
				ub.Append(*x)
			}
		}
	}
}

// displayValue renders any value as text, for string columns.
func displayValue(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return hex.EncodeToString(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case time.Time:
		return x.UTC().Format(timeLayout)
	}
	return fmt.Sprint(v)
}
