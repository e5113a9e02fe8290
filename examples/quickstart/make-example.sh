#!/usr/bin/env bash
# Regenerates the quickstart example: an example CA (with a CRL), a signer,
# three small images and two signed versions of an image list.
#
# This is also the recipe for publishing a list of your own: write the JSON
# document, then sign it with your grid certificate:
#
#   openssl smime -sign -signer usercert.pem -inkey userkey.pem -md sha256 \
#       -in image.list.json -out image.list
#
# The example keys are throw-away: they are generated here and deleted at the
# end, so nothing can sign further lists with this CA.
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

rm -rf ca site site-v2
mkdir -p ca site/images site-v2

# The CA: IGTF layout (hash-named certificate, CRL and namespace policy).
cat > "$work/ca.cnf" <<'CNF'
[ca]
default_ca = example
[example]
database = index.txt
default_md = sha256
default_crl_days = 3650
CNF
: > "$work/index.txt"
printf 'keyUsage = critical, digitalSignature, nonRepudiation\nextendedKeyUsage = emailProtection\n' > "$work/signer.ext"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$work/ca.key" -out "$work/ca.pem" -days 7300 \
    -subj "/DC=org/DC=example/CN=Example Grid CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$work/signer.key" -out "$work/signer.csr" \
    -subj "/DC=org/DC=example/OU=People/CN=Example Publisher/CN=1234" 2>/dev/null
openssl x509 -req -in "$work/signer.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
    -set_serial 4660 -days 3650 -extfile "$work/signer.ext" -out "$work/signer.pem" 2>/dev/null
(cd "$work" && openssl ca -config ca.cnf -gencrl -keyfile ca.key -cert ca.pem -out ca.crl 2>/dev/null)
hash=$(openssl x509 -noout -subject_hash -in "$work/ca.pem")
cp "$work/ca.pem" "ca/$hash.0"
cp "$work/ca.crl" "ca/$hash.r0"
cat > "ca/$hash.namespaces" <<NS
TO Issuer "/DC=org/DC=example/CN=Example Grid CA" \\
  PERMIT Subject "/DC=org/DC=example/.*"
NS

subject=$(openssl x509 -noout -subject -nameopt compat -in "$work/signer.pem" | sed 's/^subject=//')
issuer=$(openssl x509 -noout -subject -nameopt compat -in "$work/ca.pem" | sed 's/^subject=//')

# Three small "images" (any bytes will do for the example).
for n in 1 2 3; do
    for i in $(seq 1 2048); do printf 'example image %s block %06d\n' "$n" "$i"; done > "site/images/example-$n.img"
done

image_json() { # id file title
    local size sum
    size=$(stat -c %s "site/images/$2")
    sum=$(sha512sum "site/images/$2" | cut -d' ' -f1)
    cat <<JSON
{"hv:image": {"dc:identifier": "$1", "dc:title": "$3", "dc:description": "Example image",
  "hv:uri": "images/$2", "hv:size": $size, "sl:checksum:sha512": "$sum",
  "sl:arch": "x86_64", "sl:os": "Linux", "sl:osversion": "Example 1", "sl:comments": "",
  "hv:hypervisor": "KVM", "hv:version": "1", "hv:format": "raw"}}
JSON
}

list_json() { # version created images...
    local version=$1 created=$2; shift 2
    local images
    images=$(IFS=,; echo "$*")
    cat <<JSON
{"hv:imagelist": {
  "dc:identifier": "2f2f5a6e-7a2b-4b8e-9c1d-0e3f4a5b6c7d",
  "dc:title": "vmlisub quickstart list", "dc:description": "An example image list",
  "dc:source": "https://example.org/", "dc:date:created": "$created",
  "dc:date:expires": "2036-01-01T00:00:00Z", "hv:version": "$version",
  "hv:uri": "file:///tmp/vmlisub-quickstart/site/image.list",
  "hv:endorser": {"hv:x509": {"hv:dn": "$subject", "hv:ca": "$issuer",
     "hv:email": "publisher@example.org", "dc:creator": "Example Publisher"}},
  "hv:images": [$images]}}
JSON
}

now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
one=$(image_json 5b1d8a30-0c4e-4b5f-8e2a-111111111111 example-1.img "Example Linux 1")
two=$(image_json 5b1d8a30-0c4e-4b5f-8e2a-222222222222 example-2.img "Example Linux 2")
three=$(image_json 5b1d8a30-0c4e-4b5f-8e2a-333333333333 example-3.img "Example Linux 3")

list_json 1 "$now" "$one" "$two" "$three" > "$work/v1.json"
openssl smime -sign -signer "$work/signer.pem" -inkey "$work/signer.key" -md sha256 \
    -in "$work/v1.json" -out site/image.list
# Version 2 drops image 3: syncing it expires that image.
list_json 2 "$now" "$one" "$two" > "$work/v2.json"
openssl smime -sign -signer "$work/signer.pem" -inkey "$work/signer.key" -md sha256 \
    -in "$work/v2.json" -out site-v2/image.list

echo "signer subject: $subject"
echo "signer issuer:  $issuer"
