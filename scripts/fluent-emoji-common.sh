# Shared by make-emoji-data.sh and make-fixture.sh (source it; it defines variables and functions).
# Fetches the Microsoft Fluent Emoji (flat) icon set, MIT, with the ordinary npm client and makes a
# Python venv with the resvg CLI + Pillow, all under $WORK (default ./data-work/emoji, git-ignored).
EMOJI_PKG=@iconify-json/fluent-emoji-flat
EMOJI_VERSION=1.2.6
WORK=${DATA_WORK:-./data-work}/emoji
SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# emoji_prepare: download + unpack the package, make the venv (both skipped when already there).
emoji_prepare() {
  mkdir -p "$WORK"; WORK=$(cd "$WORK" && pwd)
  local tgz="$WORK/iconify-json-fluent-emoji-flat-$EMOJI_VERSION.tgz"
  [ -f "$tgz" ] || (cd "$WORK" && npm pack --silent "$EMOJI_PKG@$EMOJI_VERSION" >/dev/null)
  [ -f "$WORK/pkg/package/icons.json" ] || { mkdir -p "$WORK/pkg" && tar xzf "$tgz" -C "$WORK/pkg"; }
  [ -x "$WORK/.venv/bin/resvg" ] && "$WORK/.venv/bin/python" -c "import PIL" 2>/dev/null ||
    { python3 -m venv "$WORK/.venv" && "$WORK/.venv/bin/pip" install -q resvg-cli pillow; }
}

# emoji_render SIZE DEST: renders the 1,588 non-skin-tone icons to DEST/<index>.png (RGB on white)
# and writes DEST/labels.csv (index,name,caption,category,codepoints).
emoji_render() {
  [ -f "$2/labels.csv" ] || "$WORK/.venv/bin/python" "$SCRIPTS/render_fluent_emoji.py" \
    "$WORK/pkg/package" "$1" "$2" "$WORK/.venv/bin/resvg"
}

# emoji_license: prints the MIT licence of the icon set (the package states "MIT", author
# Microsoft Corporation; the text is the standard MIT licence with Microsoft's copyright line).
emoji_license() {
  cat <<'TXT'
Microsoft Fluent Emoji (flat), as packaged in @iconify-json/fluent-emoji-flat 1.2.6
(package.json: "license": "MIT"; info.json: author "Microsoft Corporation", licence MIT,
https://github.com/microsoft/fluentui-emoji/blob/main/LICENSE).

MIT License

Copyright (c) Microsoft Corporation.

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
TXT
}
