"""English scripts are spoken and aligned as words: numbers, money, dates, times, abbreviations."""

from __future__ import annotations

import pytest

from nerfhead.audio.normalize import cardinal, normalize_english, ordinal, year

# Sentences of the kind presenters read (news, finance, how-to, announcements), as said in US English.
CASES = [
    ("Revenue grew 3.5 % to $4.2 million in 2023.",
     "Revenue grew three point five percent to four point two million dollars in twenty twenty-three."),
    ("The meeting starts at 10:05 on 2024-03-15.",
     "The meeting starts at ten oh five on March fifteenth, twenty twenty-four."),
    ("Doors open at 7:30 pm on Friday, March 8th, and close at 11 p.m.",
     "Doors open at seven thirty p m on Friday, March eighth, and close at eleven p m."),
    ("A ticket costs $12.50, or €20 at the door; kids pay £1.",
     "A ticket costs twelve dollars and fifty cents, or twenty euros at the door; kids pay one pound."),
    ("Dr. Smith lives at 221 Baker St. near St. Paul's.",
     "Doctor Smith lives at two hundred twenty-one Baker Street near Saint Paul's."),
    ("Inflation fell to -0.4% in Q3, i.e. below the 2% target, vs. 1.1% a year ago.",
     "Inflation fell to minus zero point four percent in Q three, that is below the two percent target, "
     "versus one point one percent a year ago."),
    ("The 1990s brought 1,250,000 new homes; the 21st century more.",
     "The nineteen nineties brought one million two hundred fifty thousand new homes; the twenty-first century more."),
    ("Mix 250 ml of water with 2 kg of flour, e.g. rye, etc. Then wait 45 minutes.",
     "Mix two hundred fifty milliliters of water with two kilograms of flour, for example rye, et cetera. "
     "Then wait forty-five minutes."),
    ("Born on 4 July 1905, she moved to No. 10 in 1948.",
     "Born on the fourth of July nineteen oh five, she moved to number ten in nineteen forty-eight."),
    ("The summit is 8,849 m high and the wind blew at 120 km/h, about -30°C.",
     "The summit is eight thousand eight hundred forty-nine meters high and the wind blew at one hundred twenty "
     "kilometers per hour, about minus thirty degrees Celsius."),
    ("Mr. & Mrs. Brown paid $1,000,000 on 12/25/2020 for pages 10–20.",
     "Mister and Missus Brown paid one million dollars on December twenty-fifth, twenty twenty for pages ten to twenty."),
    ("Shares rose $0.75 to $3.2bn in value by 9 a.m. Ltd.",
     "Shares rose seventy-five cents to three point two billion dollars in value by nine a m Limited."),
]


@pytest.mark.parametrize("written, said", CASES)
def test_scripts_are_said_in_words(written, said):
    assert normalize_english(written) == said


def test_no_digit_is_left_and_plain_text_is_unchanged():
    for written, _ in CASES:
        assert not any(c.isdigit() for c in normalize_english(written)), written
    plain = "The quick brown fox, it seems, jumps over the lazy dog. Really? Yes!"
    assert normalize_english(plain) == plain


def test_number_words():
    assert cardinal(0) == "zero" and cardinal(105) == "one hundred five"
    assert cardinal(2_000_000_001) == "two billion one"
    assert [ordinal(n) for n in (1, 2, 3, 11, 23, 100)] == ["first", "second", "third", "eleventh", "twenty-third",
                                                            "one hundredth"]
    assert [year(n) for n in (1984, 1900, 2000, 2007, 2010, 1066)] == [
        "nineteen eighty-four", "nineteen hundred", "two thousand", "two thousand seven", "twenty ten",
        "ten sixty-six"]
