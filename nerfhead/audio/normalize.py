"""English text normalisation: the words a script is spoken as, before TTS and forced alignment.

A TTS voice reads "3.5 %" one way and the aligner, which needs words it can pronounce, would read
it another (or not at all), so both get the same words: :func:`normalize_english` turns numbers,
decimals, percentages, ordinals, years, dates, times, money, a few units and common
abbreviations into words. US conventions (month/day/year, "twenty twenty-four"); anything it
does not recognise is left as written.

>>> normalize_english("Revenue grew 3.5 % to $4.2 million in 2023.")
'Revenue grew three point five percent to four point two million dollars in twenty twenty-three.'
>>> normalize_english("Dr. Smith arrives at 3:30 pm on March 5th.")
'Doctor Smith arrives at three thirty p m on March fifth.'
"""

from __future__ import annotations

import re

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
         "sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10 ** 12, "trillion"), (10 ** 9, "billion"), (10 ** 6, "million"), (1000, "thousand"))
_ORDINAL = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
            "nine": "ninth", "twelve": "twelfth"}
MONTHS = ("January February March April May June July August September October November December").split()
_MONTH_ABBR = {m[:3].lower(): m for m in MONTHS}
_CURRENCY = {"$": ("dollar", "dollars", "cent", "cents"), "€": ("euro", "euros", "cent", "cents"),
             "£": ("pound", "pounds", "penny", "pence"), "¥": ("yen", "yen", "", "")}
_SCALE_WORDS = {"thousand": "thousand", "k": "thousand", "million": "million", "m": "million", "mn": "million",
                "billion": "billion", "bn": "billion", "b": "billion", "trillion": "trillion", "tn": "trillion"}
_UNITS = {"km": "kilometers", "kg": "kilograms", "cm": "centimeters", "mm": "millimeters", "mg": "milligrams",
          "ml": "milliliters", "mph": "miles per hour", "km/h": "kilometers per hour", "kph": "kilometers per hour",
          "lbs": "pounds", "lb": "pounds", "ft": "feet", "mi": "miles", "m": "meters", "kW": "kilowatts", "kWh": "kilowatt hours",
          "MW": "megawatts", "GB": "gigabytes", "MB": "megabytes", "TB": "terabytes", "GHz": "gigahertz",
          "°C": "degrees Celsius", "°F": "degrees Fahrenheit", "°": "degrees"}
_ABBREVIATIONS = {  # always the same words (case-sensitive, with their full stop)
    "Mr.": "Mister", "Mrs.": "Missus", "Ms.": "Miz", "Prof.": "Professor", "Jr.": "Junior", "Sr.": "Senior",
    "Gen.": "General", "Gov.": "Governor", "Sen.": "Senator", "Rep.": "Representative", "Sgt.": "Sergeant",
    "Capt.": "Captain", "Lt.": "Lieutenant", "Col.": "Colonel", "Rev.": "Reverend", "Hon.": "Honorable",
    "e.g.": "for example", "i.e.": "that is", "vs.": "versus", "approx.": "approximately", "Inc.": "Incorporated",
    "Ltd.": "Limited", "Corp.": "Corporation", "Dept.": "Department", "Univ.": "University", "Ave.": "Avenue",
    "Blvd.": "Boulevard", "Rd.": "Road", "Mt.": "Mount", "ca.": "circa", "a.m.": "a m", "p.m.": "p m",
    "U.S.": "U S", "U.K.": "U K", "&": "and",
}
_NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"


def cardinal(n: int) -> str:
    """``n`` in words.

    >>> cardinal(1234567)
    'one million two hundred thirty-four thousand five hundred sixty-seven'
    """
    if n < 0:
        return "minus " + cardinal(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else "-" + _ONES[n % 10])
    if n < 1000:
        return _ONES[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + cardinal(n % 100))
    for size, word in _SCALES:
        if n >= size:
            if n // size >= 1000:  # beyond the largest scale word: digit by digit
                return " ".join(_ONES[int(d)] for d in str(n))
            rest = n % size
            return cardinal(n // size) + " " + word + ("" if rest == 0 else " " + cardinal(rest))
    raise AssertionError(n)


def ordinal(n: int) -> str:
    """``n`` as an ordinal in words.

    >>> ordinal(21), ordinal(12), ordinal(40)
    ('twenty-first', 'twelfth', 'fortieth')
    """
    words = cardinal(n)
    head, sep, last = words.rpartition(" ")
    pre, dash, unit = last.rpartition("-")
    if unit in _ORDINAL:
        unit = _ORDINAL[unit]
    elif unit.endswith("y"):
        unit = unit[:-1] + "ieth"
    else:
        unit += "th"
    return head + sep + pre + dash + unit


def year(n: int) -> str:
    """How a year is said: 1984 -> nineteen eighty-four, 1905 -> nineteen oh five, 2000-2009 ->
    two thousand (five), 2024 -> twenty twenty-four; other numbers as cardinals."""
    if not 1000 <= n <= 2099 or 2000 <= n <= 2009 or n % 1000 == 0:
        return cardinal(n)
    hi, lo = divmod(n, 100)
    if lo == 0:
        return cardinal(hi) + " hundred"
    return cardinal(hi) + " " + (cardinal(lo) if lo >= 10 else "oh " + _ONES[lo])


def number(text: str) -> str:
    """A written number ("1,234", "3.50", "0.5") in words; digits after the point one by one."""
    whole, _, frac = text.replace(",", "").partition(".")
    words = cardinal(int(whole)) if whole else "zero"
    if frac:
        words += " point " + " ".join(_ONES[int(d)] for d in frac)
    return words


def _money(m: re.Match) -> str:
    one, many, sub_one, sub_many = _CURRENCY[m["cur"]]
    amount, scale = m["amount"].replace(",", ""), m["scale"]
    if scale:
        return f"{number(amount)} {_SCALE_WORDS[scale.lower()]} {many}"
    whole, _, frac = amount.partition(".")
    units = int(whole or 0)
    out = [] if units == 0 and frac else [f"{cardinal(units)} {one if units == 1 else many}"]
    if frac and sub_one and len(frac) == 2 and int(frac):
        cents = int(frac)
        out.append(f"{cardinal(cents)} {sub_one if cents == 1 else sub_many}")
    elif frac and int(frac):  # not two digits (or no subunit): read the decimal
        return f"{number(amount)} {many}"
    return " and ".join(out)


def _time(m: re.Match) -> str:
    h, mins, half = int(m["h"]), int(m["m"] or 0), (m["ap"] or "").lower()
    if h > 24 or mins > 59:
        return m[0]
    if mins == 0:
        said = cardinal(h) + (" o'clock" if not half and h <= 12 else " hundred" if not half else "")
    elif mins < 10:
        said = f"{cardinal(h)} oh {_ONES[mins]}"
    else:
        said = f"{cardinal(h)} {cardinal(mins)}"
    return said + (f" {half} m" if half else "")


def _date(month: int, day: int, yr: str | None) -> str | None:
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    said = f"{MONTHS[month - 1]} {ordinal(day)}"
    if yr:
        y = int(yr)
        said += ", " + year(y + (2000 if y < 50 else 1900) if len(yr) == 2 else y)
    return said


def _month(name: str) -> str:
    """Full month name of ``name`` ("Sept." -> September)."""
    return _MONTH_ABBR.get(name.lower()[:3], name)


def _day_of(m: re.Match) -> str:
    day = int(m[1])
    if not 1 <= day <= 31:
        return m[0]
    the = "" if m.string[:m.start()].rstrip().lower().endswith("the") else "the "
    return f"{the}{ordinal(day)} of {_month(m[2])}" + (f" {year(int(m[3]))}" if m[3] else "")


_MONTH_RE = r"(?:January|February|March|April|May|June|July|August|September|October|November|December|" \
            r"Jan\.?|Feb\.?|Mar\.?|Apr\.?|Jun\.?|Jul\.?|Aug\.?|Sept?\.?|Oct\.?|Nov\.?|Dec\.?)"


def _sub_all(text: str) -> str:
    t = re.sub(r"(?<![\w.])-(?=\d)", "minus ", text)
    # money: $4.2 million, $3.50, €20, £0.99
    t = re.sub(r"(?P<cur>[$€£¥])\s?(?P<amount>" + _NUM + r")(?:\s?(?P<scale>thousand|million|billion|trillion|"
               r"mn|bn|tn|[kKmMbB])\b)?", _money, t)
    # percentages
    t = re.sub(r"(" + _NUM + r")\s?%", lambda m: number(m[1]) + " percent", t)
    # dates: 2024-03-15, 3/15/2024, March 15(th)(, 2024), 15(th) March (2024)
    t = re.sub(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b",
               lambda m: _date(int(m[2]), int(m[3]), m[1]) or m[0], t)
    t = re.sub(r"\b(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})\b",
               lambda m: _date(int(m[1]), int(m[2]), m[3]) or m[0], t)
    t = re.sub(r"\b(" + _MONTH_RE + r")\s+(\d{1,2})(?:st|nd|rd|th)?\b(?:,?\s+(\d{4})\b)?",
               lambda m: _date(MONTHS.index(_month(m[1])) + 1, int(m[2]), m[3]) or m[0], t)
    t = re.sub(r"\b(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?(" + _MONTH_RE + r")(?:\s+(\d{4})\b)?", _day_of, t)
    # times: 3:30 pm, 10:05, 3 p.m.
    t = re.sub(r"\b(?P<h>\d{1,2}):(?P<m>\d{2})(?:\s*(?P<ap>[aApP])\.?\s?[mM]\b)?", _time, t)
    t = re.sub(r"\b(?P<h>\d{1,2})(?P<m>)\s*(?P<ap>[aApP])\.?\s?[mM]\b", _time, t)
    t = re.sub(r"(?<=\d)\s?[–—]\s?(?=\d)", " to ", t)  # ranges: 10–20
    # decades and ordinals
    t = re.sub(r"\b(1\d|20)(\d)0s\b", lambda m: _plural(year(int(m[1] + m[2] + "0"))), t)
    t = re.sub(r"\b(\d+)(?:st|nd|rd|th)\b", lambda m: ordinal(int(m[1])), t)
    # units after a number (before the number itself is read)
    units = "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
    t = re.sub(r"(" + _NUM + r")\s?(" + units + r")(?![\w/])", lambda m: f"{m[1]} {_UNITS[m[2]]}", t)
    # "No. 5" -> number five
    t = re.sub(r"\bNo\.\s?(?=\d)", "number ", t)
    # years standing alone (four digits, no comma or point), then every other number
    t = re.sub(r"(?<![\d,.])\b(1[1-9]\d\d|20\d\d)\b(?![,.]\d)", lambda m: year(int(m[1])), t)
    t = re.sub(r"(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])", " ", t)  # Q3 -> Q three, 4K -> four K
    t = re.sub(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?", lambda m: number(m[0]), t)
    return t


def _plural(words: str) -> str:
    head, sep, last = words.rpartition(" ")
    pre, dash, unit = last.rpartition("-")
    unit = unit[:-1] + "ies" if unit.endswith("y") else unit + "s"
    return head + sep + pre + dash + unit


def _abbreviations(text: str) -> str:
    t = text
    for short, long in _ABBREVIATIONS.items():
        end = "." if short.endswith(".") else ""  # one that ends the text keeps the sentence's full stop
        t = re.sub(r"(?<![\w.])" + re.escape(short) + r"(?=\s*$)", long + end, t)
        t = re.sub(r"(?<![\w.])" + re.escape(short) + r"(?!\w)", long, t)
    # St. and Dr. before a name are Saint and Doctor, after one Street and Drive
    t = re.sub(r"\bSt\.(?=\s+[A-Z])", "Saint", t)
    t = re.sub(r"\bSt\.(?=\s*$)", "Street.", t)
    t = re.sub(r"\bSt\.", "Street", t)
    t = re.sub(r"\bDr\.(?=\s+[A-Z])", "Doctor", t)
    t = re.sub(r"\bDr\.(?=\s*$)", "Drive.", t)
    t = re.sub(r"\bDr\.", "Drive", t)
    # etc. keeps its full stop where a sentence ends
    t = re.sub(r"\betc\.(?=\s+[A-Z]|\s*$)", "et cetera.", t)
    t = re.sub(r"\betc\.", "et cetera", t)
    return t


def normalize_english(text: str) -> str:
    """``text`` with numbers, money, percentages, dates, times, units and abbreviations in words."""
    return _sub_all(_abbreviations(text))
