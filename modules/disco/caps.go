package disco

import (
	"crypto/sha1"
	"encoding/base64"
	"sort"
	"strings"

	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// NSCaps is the XEP-0115 entity capabilities namespace.
const NSCaps = "http://jabber.org/protocol/caps"

// NSData is the XEP-0004 data forms namespace.
const NSData = "jabber:x:data"

// capsIdentity is an identity as XEP-0115 §5.1 hashes it (with xml:lang).
type capsIdentity struct {
	Category, Type, Lang, Name string
}

// capsVer computes the XEP-0115 §5.1 verification string with SHA-1: sorted
// identities (category/type/lang/name), sorted features, then the XEP-0128
// forms sorted by FORM_TYPE with their fields sorted by var and values
// sorted. All sorting is by octets ("i;octet"). Forms without a hidden
// FORM_TYPE are skipped (§5.4 tells receivers to ignore them).
func capsVer(identities []capsIdentity, features []string, forms []*stanza.Element) string {
	var b strings.Builder
	ids := make([]string, len(identities))
	for i, id := range identities {
		ids[i] = id.Category + "/" + id.Type + "/" + id.Lang + "/" + id.Name
	}
	sort.Strings(ids)
	for _, s := range ids {
		b.WriteString(s)
		b.WriteByte('<')
	}
	fs := append([]string(nil), features...)
	sort.Strings(fs)
	for _, f := range fs {
		b.WriteString(f)
		b.WriteByte('<')
	}
	type field struct {
		v      string
		values []string
	}
	type form struct {
		typ    string
		fields []field
	}
	var fl []form
	for _, x := range forms {
		if x == nil || x.Space != NSData || x.Name != "x" {
			continue
		}
		var f form
		hasType := false
		for fe := range x.Elements {
			if fe.Name != "field" || fe.Space != NSData {
				continue
			}
			var vals []string
			for v := range fe.Elements {
				if v.Name == "value" && v.Space == NSData {
					vals = append(vals, v.Text())
				}
			}
			if fe.Attr("var") == "FORM_TYPE" {
				if len(vals) > 0 {
					f.typ = vals[0]
					hasType = true
				}
				continue
			}
			sort.Strings(vals)
			f.fields = append(f.fields, field{fe.Attr("var"), vals})
		}
		if !hasType {
			continue
		}
		sort.SliceStable(f.fields, func(i, j int) bool { return f.fields[i].v < f.fields[j].v })
		fl = append(fl, f)
	}
	sort.SliceStable(fl, func(i, j int) bool { return fl[i].typ < fl[j].typ })
	for _, f := range fl {
		b.WriteString(f.typ)
		b.WriteByte('<')
		for _, fd := range f.fields {
			b.WriteString(fd.v)
			b.WriteByte('<')
			for _, v := range fd.values {
				b.WriteString(v)
				b.WriteByte('<')
			}
		}
	}
	sum := sha1.Sum([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(sum[:])
}
