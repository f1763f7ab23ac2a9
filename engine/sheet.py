"""Read a supplier's product sheet (CSV), mapping columns by header name.

Suppliers name their columns differently ("SKU", "Article no.", "Artikel-Nr.", "Référence",
"Price EUR"), in English, German, French, Dutch, Spanish or Italian,
so headers are normalised and matched against aliases; every other column is kept as a free
attribute. Encoding and delimiter are sniffed, because sheets come out of Excel in every locale.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.workbook_pictures import Picture

FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "sku": (
        "sku",
        "id",
        "code",
        "productcode",
        "productid",
        "itemcode",
        "item",
        "itemno",
        "itemnumber",
        "article",
        "articleno",
        "articlenumber",
        "artikelnummer",
        "artikelnr",
        "artnr",
        "bestellnummer",
        "bestellnr",
        "referenz",
        "artikelcode",
        "codearticle",
        "refarticle",
        "referencia",
        "codigo",
        "codice",
        "codicearticolo",
        "ref",
        "reference",
        "ean",
        "gtin",
        "upc",
        "barcode",
    ),
    "name": (
        "name",
        "productname",
        "title",
        "product",
        "description",
        "itemname",
        "bezeichnung",
        "designation",
        "artikelname",
        "artikelbezeichnung",
        "produktname",
        "beschreibung",
        "libelle",
        "nom",
        "nomproduit",
        "naam",
        "productnaam",
        "omschrijving",
        "nombre",
        "descripcion",
        "nome",
        "descrizione",
    ),
    "category": (
        "category",
        "categories",
        "class",
        "group",
        "productgroup",
        "type",
        "department",
        "kategorie",
        "warengruppe",
        "artikelgruppe",
        "produktgruppe",
        "categorie",
        "famille",
        "productgroep",
        "categoria",
    ),
    "supplier": (
        "supplier",
        "vendor",
        "brand",
        "manufacturer",
        "maker",
        "lieferant",
        "hersteller",
        "marke",
        "fournisseur",
        "marque",
        "leverancier",
        "proveedor",
        "marca",
        "fornitore",
    ),
    "price": (
        "price",
        "unitprice",
        "cost",
        "retailprice",
        "rrp",
        "msrp",
        "preis",
        "vkpreis",
        "verkaufspreis",
        "einzelpreis",
        "stuckpreis",
        "prix",
        "prixunitaire",
        "prijs",
        "precio",
        "prezzo",
    ),
    "image": (
        "image",
        "images",
        "imagepath",
        "imagefile",
        "file",
        "filename",
        "path",
        "picture",
        "photo",
        "img",
        "bild",
        "bilddatei",
        "foto",
        "afbeelding",
        "imagen",
        "immagine",
    ),
}


class SheetError(ValueError):
    """The sheet cannot be used at all (unreadable, no header, no SKU column)."""


@dataclass
class SheetRow:
    line: int
    sku: str
    name: str = ""
    category: str = ""
    supplier: str = ""
    price: float | None = None
    image: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    tab: str = ""  # the worksheet, when a workbook's products are on several
    embedded: list[Picture] = field(default_factory=list)  # placed in its row of a workbook


@dataclass
class Sheet:
    path: Path
    mapping: dict[str, str]  # our field -> the sheet's header
    rows: list[SheetRow]
    problems: list[str]  # rows left out, e.g. "line 7: no SKU, row skipped"
    notes: list[str] = field(default_factory=list)  # read, but worth a look ("line 1: ...")
    delimiter: str = ","  # the supplier's: ";" means a decimal-comma locale's Excel
    unit: str = "line"  # what a message counts: a CSV's lines, a workbook's rows
    worksheets: str = ""  # a workbook of several: which were read, and why not the others
    # A workbook's worksheets read, each with its own mapping (they may differ).
    tab_mappings: dict[str, dict[str, str]] = field(default_factory=dict)

    def column_names(self) -> dict[str, str]:
        """Our field -> the sheet's header, for the preview; where a workbook's worksheets
        head a field differently, each with its worksheet: an ERP tab whose SKU column is
        'ID' (a row number) must show, not hide behind the first tab's 'Article no.'."""
        if len(self.tab_mappings) < 2:
            return dict(self.mapping)
        names: dict[str, str] = {}
        fields = dict.fromkeys(f for m in self.tab_mappings.values() for f in m)
        for f in fields:
            heads = {tab: m.get(f, "(none)") for tab, m in self.tab_mappings.items()}
            if len(set(heads.values())) == 1:
                names[f] = next(iter(heads.values()))
            else:
                names[f] = ", ".join(f"{h} ('{tab}')" for tab, h in heads.items())
        return names

    @property
    def workbook(self) -> bool:
        """Read from an Excel workbook: no delimiter, so no hint of the supplier's locale."""
        return self.unit == "row"

    def where(self, row: SheetRow) -> str:
        """'prices.csv line 7', "prices.xlsx worksheet 'Dairy' row 7": where to look."""
        tab = f" worksheet '{row.tab}'" if row.tab else ""
        return f"{self.path.name}{tab} {self.unit} {row.line}"


def normalise_header(header: str) -> str:
    """'Référence' -> 'reference', 'Artikel-Nr.' -> 'artikelnr': accents and punctuation go,
    so a sheet saved in any locale maps the same way."""
    plain = unicodedata.normalize("NFKD", header.strip().lower())
    return re.sub(r"[^0-9a-z]", "", "".join(c for c in plain if not unicodedata.combining(c)))


def map_columns(headers: list[str]) -> dict[str, str]:
    """Map our fields to sheet headers: exact aliases everywhere first, then a header that
    starts with an alias ("price_eur"), so a prefix never steals another field's exact match."""
    norm = {h: normalise_header(h) for h in headers}
    mapping: dict[str, str] = {}
    for exact in (True, False):
        for fld, aliases in FIELD_ALIASES.items():
            if fld in mapping:
                continue
            taken = set(mapping.values())
            for alias in aliases:  # aliases are in priority order
                hit = next(
                    (
                        h
                        for h in headers
                        if h not in taken
                        and (
                            norm[h] == alias
                            if exact
                            else (len(alias) > 3 and norm[h].startswith(alias))
                        )
                    ),
                    None,
                )
                if hit is not None:
                    mapping[fld] = hit
                    break
    return mapping


_GROUP = "[ \u00a0\u202f']"  # thousands separators: space, no-break spaces, Swiss apostrophe


def product_price(product: Mapping[str, object]) -> float | str | None:
    """A product row's price as the shop reads it: the number, or the sheet's own words
    ('2 for 3.00') that no number could hold, kept in its attributes at import."""
    price = product.get("price")
    if isinstance(price, int | float):
        return price
    attributes = product.get("attributes") or {}
    if isinstance(attributes, str):
        try:
            attributes = json.loads(attributes)
        except ValueError:
            return None
    text = attributes.get("price_text") if isinstance(attributes, dict) else None
    return text if isinstance(text, str) and text else None


def parse_price(text: str) -> float | None:
    """'1 234,50 €' -> 1234.5, '$3.99' -> 3.99; unparseable -> None (kept as text attribute).

    Currency signs and words around the number go; words inside it make it text: gluing
    the digits of '2 for 3.00' read 23.0, and '12 x 0.99' 120.99."""
    cleaned = re.sub(r"^(?:[^\d\-.,]|[.,](?!\d))+|[^\d.,]+$", "", text.strip())
    if re.search(r"[^\d.,\-]", re.sub(_GROUP, "", cleaned)):
        return None
    if re.search(_GROUP, cleaned):
        if not re.fullmatch(rf"-?\d{{1,3}}(?:{_GROUP}\d{{3}})+(?:[.,]\d+)?", cleaned):
            return None
        cleaned = re.sub(_GROUP, "", cleaned)
    if not cleaned:
        return None
    if "," in cleaned and "." in cleaned:
        if cleaned.rfind(",") > cleaned.rfind("."):
            cleaned = cleaned.replace(".", "").replace(",", ".")
        else:
            cleaned = cleaned.replace(",", "")
    elif "," in cleaned:
        cleaned = cleaned.replace(",", ".")
    try:
        return float(cleaned)
    except ValueError:
        return None


# Python's csv module refuses fields over 128 KiB; a long description column in a real sheet
# can exceed that. Raised (never lowered) to a bound that still keeps one field's memory small.
MAX_FIELD = 16 << 20
if csv.field_size_limit() < MAX_FIELD:
    csv.field_size_limit(MAX_FIELD)


def _utf16_without_bom(raw: bytes) -> str | None:
    """Excel's "Unicode text" is UTF-16; without a BOM, every other byte of ASCII is 0."""
    head = raw[:4096]
    if len(head) < 4:
        return None
    even, odd = head[0::2].count(0), head[1::2].count(0)
    # Mostly-ASCII text puts its NULs on one side; a few on the other side are characters
    # such as U+0100 ("Ā" is 00 01 in UTF-16-LE).
    if odd > len(head) // 4 and even <= odd // 4:
        return "utf-16-le"
    if even > len(head) // 4 and odd <= even // 4:
        return "utf-16-be"
    return None


_UTF8_SEQUENCE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)
_MOSTLY_UTF8 = "utf-8-sig+cp1252"  # marker: UTF-8, its few invalid bytes read as Windows-1252


def _mostly_utf8(raw: bytes) -> bool:
    """A UTF-8 sheet with a few Windows-1252 bytes (a row pasted from an old file): more
    valid multi-byte sequences than stray high bytes. Reading all of it as cp1252 turned
    every accent into two letters ("CrÃ¨me"). Only sequences that spell letters a product
    sheet uses count (Latin, Greek, Cyrillic, Vietnamese, punctuation, currency): genuine
    Windows-1252 text forms others by chance ("É®" is UTF-8 for the IPA letter "ɮ")."""
    sequences = _UTF8_SEQUENCE.findall(raw)
    letters = sum(1 for m in sequences if _plausible(m.decode("utf-8")))
    high = sum(1 for b in raw if b >= 0x80)
    stray = high - sum(len(m) for m in sequences)
    return letters > 0 and letters > stray


def _plausible(char: str) -> bool:
    code = ord(char)
    return (
        0xA0 <= code <= 0x24F  # Latin-1 Supplement, Latin Extended-A/B
        or 0x370 <= code <= 0x4FF  # Greek, Cyrillic
        or 0x1E00 <= code <= 0x1EFF  # Latin Extended Additional (Vietnamese)
        or 0x2000 <= code <= 0x20CF  # punctuation, currency signs (€)
        or 0x2100 <= code <= 0x215F  # letterlike symbols (™, ℓ), fractions
    )


def _cp1252_fallback(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    bad = exc.object[exc.start : exc.end]
    return bad.decode("cp1252", errors="replace"), exc.end


codecs.register_error("shopmatch-cp1252", _cp1252_fallback)


# Files given where a text sheet is read (what decode_text says of each).
NOT_TEXT = {
    "xlsx": "is an Excel workbook; save it as CSV (UTF-8) first",
    "strict": "is saved as Strict Open XML; save it as an Excel Workbook (.xlsx) or as CSV "
    "(UTF-8) first",
    "xls": "is an Excel 97-2003 workbook (.xls) or a password-protected one; save it as .xlsx "
    "(without a password) or as CSV (UTF-8) first",
    "xlsb": "is an Excel binary workbook (.xlsb); save it as .xlsx or as CSV (UTF-8) first",
    "ods": "is an OpenDocument spreadsheet (.ods); save it as .xlsx or as CSV (UTF-8) first",
    "numbers": "is a Numbers spreadsheet; export it as .xlsx or as CSV (UTF-8) first",
    "zip": "is a zip archive, not a sheet: unzip it and choose the sheet inside",
    "damaged": "is a damaged or incomplete spreadsheet (its zip container cannot be read: a "
    "download or copy cut short?); get it again",
}


def decode_text(raw: bytes, name: str) -> str:
    """Sheet bytes to text: BOMs first (UTF-32/16/8), then UTF-8, cp1252, latin-1."""
    from engine.workbook import spreadsheet_kind

    kind = spreadsheet_kind(raw)
    if kind:
        raise SheetError(f"{name} {NOT_TEXT[kind]}")
    boms = [
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ]
    candidates = [enc for bom, enc in boms if raw.startswith(bom)][:1]
    guess = _utf16_without_bom(raw)
    candidates += [guess] if guess else []
    candidates += ["utf-8-sig", _MOSTLY_UTF8, "cp1252"]
    text = None
    for encoding in candidates:
        try:
            if encoding == _MOSTLY_UTF8:  # only once strict UTF-8 failed: it costs a scan
                if not _mostly_utf8(raw):
                    continue
                text = raw.decode("utf-8-sig", errors="shopmatch-cp1252")
            else:
                text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    if text is None:
        text = raw.decode("latin-1")
    if text.count("\x00") > max(8, len(text) // 100):
        raise SheetError(f"sheet {name} is not a text (CSV) file")
    return text.replace("\x00", "")


class _Sheet(csv.excel):
    """Excel's CSV rules (double-quote quoting, doubled quotes) with the sheet's delimiter."""


def mac_line_ends(text: str) -> str:
    """'CSV (Macintosh)' text, whose lines end in a lone CR, with LF line ends (a line break
    typed in a cell is a LF, so only a text with more CRs than LFs is changed)."""
    if "\r\n" not in text and text.count("\r") > text.count("\n"):
        return text.replace("\r", "\n")
    return text


def sniff_dialect(text: str) -> type[csv.Dialect]:
    """The delimiter is the candidate the header line uses most (outside quotes).

    Not csv.Sniffer: it also guesses the quote character from the data, and a cell holding
    a lone apostrophe made it split rows on "'" and read wrong SKUs. Excel, LibreOffice and
    Numbers always quote with '"', in every locale; only the delimiter varies.
    """
    header = next((line for line in text.splitlines() if line.strip()), "")
    bare = re.sub(r'"[^"]*"', "", header)
    counts = {d: bare.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])  # ties: the earlier (comma first)
    return type("SheetDialect", (_Sheet,), {"delimiter": best if counts[best] else ","})


def read_sheet(path: Path) -> Sheet:
    """A CSV, TSV or text sheet, or an Excel workbook (.xlsx, .xlsm), told apart by content:
    a workbook saved with a .csv name is still read."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SheetError(f"cannot read sheet {path.name}: {exc.strerror or exc}") from exc
    from engine.workbook import spreadsheet_kind

    if spreadsheet_kind(raw) == "xlsx":
        from engine.workbook_sheet import read_workbook

        return read_workbook(path, raw)  # other spreadsheets: decode_text says what to do
    text = decode_text(raw, path.name)
    if not text.strip():
        raise SheetError(f"sheet {path.name} is empty")
    text = mac_line_ends(text)
    try:
        return _parse_below_title(path, text)
    except csv.Error as exc:  # e.g. a field over MAX_FIELD: the sheet is not usable as is
        raise SheetError(f"sheet {path.name} cannot be read as CSV ({exc})") from exc


SEPARATORS = ",;\t| "  # what an empty row of another delimiter's sheet is made of
TITLE_LINES = 10  # lines above the header a sheet may spend on a title, a date, a note


def _parse_below_title(path: Path, text: str, unit: str = "line") -> Sheet:
    """Parse from the line that reads best as the column headers: supplier price lists
    often open with a title ("Price list November 2026") or blank lines. Among the first
    TITLE_LINES + 1 non-blank lines, the one naming the most of our columns (a SKU column
    among them) wins, the earliest on a tie: a title such as "Article list" names a SKU
    column too, but nothing else. The error names the first line's headers when none does."""
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.strip()][: TITLE_LINES + 1]
    best, best_score = starts[0], -1
    for start in starts:
        dialect = sniff_dialect(lines[start])
        headers = next(csv.reader([lines[start]], dialect=dialect), [])
        mapping = map_columns([h for h in headers if h])
        score = len(mapping) if "sku" in mapping else -1
        if score > best_score:
            best, best_score = start, score
    body = "".join(lines[best:])
    sheet = _parse(path, body, sniff_dialect(body), offset=best, unit=unit)  # may raise
    if best and any(lines[i].strip() for i in range(best)):
        where = f"{unit} 1" if best == 1 else f"{unit}s 1-{best}"
        sheet.notes.insert(0, f"{where}: above the column headers (a title): not products")
    return sheet


def _decimal_comma(cells: list[str], price_at: int, width: int) -> list[str] | None:
    """A comma-separated row one cell too long because its price has a decimal comma
    ("A,1,29,Apple" under "sku,price,name"): the price and the 1-2 digits after it joined
    again; None when the row does not look like that (the extra cells are then ignored)."""
    if price_at < 0 or len(cells) != width + 1:
        return None
    whole, cents = cells[price_at].strip(), cells[price_at + 1].strip()
    if not (re.fullmatch(r"[^\d,]*\d[\d .']*", whole) and re.fullmatch(r"\d{1,2}\D{0,4}", cents)):
        return None
    return [*cells[:price_at], f"{whole},{cents}", *cells[price_at + 2 :]]


def _parse(
    path: Path, text: str, dialect: type[csv.Dialect], offset: int = 0, unit: str = "line"
) -> Sheet:
    """``offset``: lines of the file above ``text`` (line numbers in messages are the file's);
    ``unit``: what messages call a line ("row" in a workbook)."""
    reader = csv.reader(io.StringIO(text), dialect=dialect)
    headers = next(reader, [])
    mapping = map_columns(headers)
    if "sku" not in mapping:
        raise SheetError(
            f"sheet {path.name} has no SKU column (looked for a header like "
            f"'sku', 'code', 'article'; found: {', '.join(headers) or 'none'})"
        )
    used = set(mapping.values())
    rows: list[SheetRow] = []
    problems: list[str] = []
    # Two columns under one header: a row keeps only the last one's cell, so say which.
    notes: list[str] = [
        f"{unit} {offset + 1}: two columns are headed '{h}'; the one further right is read"
        for h in dict.fromkeys(h for h in headers if h.strip() and headers.count(h) > 1)
    ]
    seen_without_image: set[str] = set()
    first: dict[str, SheetRow] = {}  # a SKU's first row: later rows add pictures to it
    overfull: list[int] = []  # lines with more cells than headers
    joined: list[int] = []  # lines whose decimal-comma price was split and joined again
    price_at = headers.index(mapping["price"]) if "price" in mapping else -1
    for cells in reader:
        line = reader.line_num + offset
        if not cells:
            continue
        if len(cells) > len(headers) and any(c.strip() for c in cells[len(headers) :]):
            # A workbook's cells are cells: its extra ones are a column with no header.
            mended = _decimal_comma(cells, price_at, len(headers)) if unit == "line" else None
            if mended is None:
                overfull.append(line)
            else:
                cells = mended
                joined.append(line)
        values = {k: v.strip() for k, v in zip(headers, cells, strict=False)}
        sku = values.get(mapping["sku"], "")
        if not sku:
            if any(values.values()):
                problems.append(f"{unit} {line}: no SKU, row skipped")
            continue
        if not sku.strip(SEPARATORS):  # ";;;": an empty row saved with another delimiter
            problems.append(f"{unit} {line}: '{sku}' is not a SKU (only separators), row skipped")
            continue
        price_text = values.get(mapping.get("price", ""), "")
        price = parse_price(price_text) if price_text else None
        attributes = {k: v for k, v in values.items() if k not in used and v}
        if price_text and price is None:
            attributes["price_text"] = price_text
        image = values.get(mapping.get("image", ""), "")
        row = SheetRow(
            line=line,
            sku=sku,
            name=values.get(mapping.get("name", ""), ""),
            category=values.get(mapping.get("category", ""), ""),
            supplier=values.get(mapping.get("supplier", ""), ""),
            price=price,
            image=image,
            attributes=attributes,
        )
        earlier = first.setdefault(sku, row)
        if earlier is not row and row.name and earlier.name and row.name != earlier.name:
            # One row per picture is normal; another name under the same SKU is most likely
            # a typo that would silently give this row to the other product.
            what = "this row's picture goes" if image else "this row adds nothing and goes"
            notes.append(
                f"{unit} {line}: SKU {sku} is also on {unit} {earlier.line} as '{earlier.name}', "
                f"not '{row.name}'; {what} to that product, with {unit} {earlier.line}'s name "
                "and price"
            )
        if not image and sku in seen_without_image:
            continue
        if not image:
            seen_without_image.add(sku)
        rows.append(row)
    if joined:
        notes.append(
            f"{_lines(joined, unit)}: a price's decimal comma split the row; read as one price "
            '(write such prices in quotes, "1,29")'
        )
    if overfull:
        why = (
            "a column has no header"
            if unit == "row"
            else 'a decimal comma in a comma-separated sheet? write such prices in quotes, "1,29"'
        )
        notes.append(
            f"{_lines(overfull, unit)}: more cells than column headers; the extra cells are "
            f"ignored ({why})"
        )
    return Sheet(
        path=path,
        mapping=mapping,
        rows=rows,
        problems=problems,
        notes=notes,
        delimiter=dialect.delimiter,
        unit=unit,
    )


def _lines(numbers: list[int], unit: str = "line") -> str:
    """'line 4', 'lines 2, 4', 'rows 2, 4, 9 and 3 more'."""
    more = f" and {len(numbers) - 3} more" if len(numbers) > 3 else ""
    return f"{unit}{'s' if len(numbers) > 1 else ''} {', '.join(map(str, numbers[:3]))}{more}"
