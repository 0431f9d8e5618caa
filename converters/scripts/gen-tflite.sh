#!/bin/sh
# Regenerate converters/src/tflite/generated/ (TypeScript reader/writer for TFLite flatbuffers) from the
# official schema with Debian's flatc 2.0.8 (package flatbuffers-compiler). The output is committed; a test
# checks that running this script again gives the same files.
#
#   converters/scripts/gen-tflite.sh [SCHEMA.fbs] [OUT_DIR]
#
# Three patches, each for a reason found by running real models (research/converters.md §3.6):
#  1. flatc 2.0.8 rejects `(deprecated)` on an enum value, a union member and a table: stripped from a copy.
#  2. The object API writes empty arrays as zero-length vectors; TFLite then reads an empty Buffer.data as a
#     constant of the wrong size and an empty custom_options on a builtin op as an error. pack() now omits
#     those (Buffer.data, Operator.custom_options/mutating_variable_inputs/intermediates,
#     Tensor.shape_signature); other lists stay, since TFLite refuses a model whose buffer list is absent.
#  3. Buffer.data is unpacked as a Uint8Array copy (not a number[] built byte by byte) and written 16-byte
#     aligned, as the schema's force_align asks and TFLite's own writer does. Other numeric vectors are
#     unpacked from a typed-array view (an Edge TPU op's custom_options alone can be megabytes).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
schema=${1:-${EDGEFLEET_SHARED_DIR:-$root/../shared}/models/tflite-schema.fbs}
out=${2:-$root/converters/src/tflite/generated}
command -v flatc >/dev/null || { echo "flatc not found: apt-get install flatbuffers-compiler" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed -E \
  -e 's/^([[:space:]]*REDUCE_WINDOW = 205) \(deprecated\),/\1,/' \
  -e 's/^([[:space:]]*ReduceWindowOptions) \(deprecated\),/\1,/' \
  -e 's/^table ReduceWindowOptions \(deprecated\) \{/table ReduceWindowOptions {/' \
  "$schema" > "$work/schema.fbs"
if grep -n '(deprecated)' "$work/schema.fbs" | grep -v ':[[:space:]]*[a-z_]*:[^;]*(deprecated);' >/dev/null; then
  echo "schema has (deprecated) attributes this script does not know how to patch" >&2
  exit 1
fi
flatc --ts --gen-object-api -o "$work/gen" "$work/schema.fbs"

# 2. Empty vectors that TFLite misreads are written as absent (others, like Model.buffers, must stay present).
for spec in buffer.ts:data operator.ts:customOptions operator.ts:mutatingVariableInputs \
  operator.ts:intermediates tensor.ts:shapeSignature; do
  file=$work/gen/tflite/${spec%%:*}
  field=${spec#*:}
  perl -pi -e 's/^(\s*const '"$field"' = )(\w+\.create\w+Vector\(builder, this\.'"$field"'\));$/$1(this.'"$field"'.length ? $2 : 0);/' "$file"
  grep -qF "(this.$field.length ? " "$file" || { echo "patch 2 did not apply to $spec: flatc output changed" >&2; exit 1; }
done

# 3. Buffer.data: typed array in, aligned out.
b="$work/gen/tflite/buffer.ts"
perl -pi -e 's/this\.bb!\.createScalarList<number>\(this\.data\.bind\(this\), this\.dataLength\(\)\)/(this.dataArray()?.slice() ?? [])/g; s/this\.bb!\.createScalarList\(this\.data\.bind\(this\), this\.dataLength\(\)\)/(this.dataArray()?.slice() ?? [])/g; s/public data: \(number\)\[\] = \[\]/public data: (number)[]|Uint8Array = []/; s/builder\.startVector\(1, data\.length, 1\);/builder.startVector(1, data.length, 16);/' "$b"
for pattern in 'dataArray()?.slice()' 'number)[]|Uint8Array' 'startVector(1, data.length, 16)'; do
  grep -qF "$pattern" "$b" || { echo "patch 3 did not apply ($pattern): flatc output changed" >&2; exit 1; }
done
for f in "$work"/gen/tflite/*.ts; do
  perl -0pi -e 'my %typed = map { $_ => 1 } (/^(\w+)Array\(\):/mg); my %bool = map { $_ => 1 } (/^(\w+)\(index: number\):boolean/mg); s/this\.bb!\.createScalarList(?:<\w+>)?\(this\.(\w+)\.bind\(this\), this\.\1Length\(\)\)/$typed{$1} && !$bool{$1} ? "Array.from(this.$1Array() ?? [])" : $&/ge' "$f"
done
grep -qF 'Array.from(this.customOptionsArray() ?? [])' "$work/gen/tflite/operator.ts" ||
  { echo "patch 3 did not apply to Operator.custom_options: flatc output changed" >&2; exit 1; }

rm -rf "$out"
mkdir -p "$out"
cp -r "$work/gen/." "$out/"
echo "generated $(find "$out" -name '*.ts' | wc -l) files in $out"
