"""Language detection: the bundled fastText model, and null when unsure."""

from __future__ import annotations

import re
import socket

import msgspec
import pytest

from service.normalize import language
from service.normalize.language import detect_language

SENTENCES = {
    "en": "The city council approved the new budget on Tuesday after a long debate about "
    "public transport and the cost of repairing the old bridge.",
    "de": "Der Stadtrat hat am Dienstag nach einer langen Debatte über den öffentlichen "
    "Nahverkehr den neuen Haushalt beschlossen.",
    "fr": "Le conseil municipal a adopté mardi le nouveau budget après un long débat sur "
    "les transports publics et la rénovation du vieux pont.",
    "es": "El ayuntamiento aprobó el martes el nuevo presupuesto tras un largo debate sobre "
    "el transporte público y el coste de reparar el viejo puente.",
    "pt": "A câmara municipal aprovou na terça-feira o novo orçamento depois de um longo "
    "debate sobre os transportes públicos e a reparação da ponte velha.",
    "it": "Il consiglio comunale ha approvato martedì il nuovo bilancio dopo un lungo "
    "dibattito sul trasporto pubblico e sul costo della riparazione del vecchio ponte.",
    "ru": "Во вторник городской совет после долгих споров об общественном транспорте "
    "утвердил новый бюджет города.",
    "ja": "市議会は火曜日、公共交通機関と古い橋の修理費用をめぐる長い議論の末、新しい予算を承認した。",
    "ko": "시의회는 화요일 대중교통과 낡은 다리의 보수 비용에 대한 긴 논쟁 끝에 새 예산을 승인했다.",
    "zh": "市议会周二在就公共交通和修复旧桥的费用进行了长时间辩论后批准了新的预算。",
}


@pytest.mark.parametrize(("code", "sentence"), sorted(SENTENCES.items()))
def test_a_sentence_gets_its_language(code: str, sentence: str) -> None:
    found = detect_language(sentence)
    assert found is not None
    assert found.code == code
    assert language.MIN_CONFIDENCE <= found.confidence <= 1.0


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\n  ",
        "OK.",
        "The meeting is today",  # 17 letters
        "Maria Fernandes",
        "2018-09-12 https://example.com/x?y=1",
        "Eastside 12 9 14 10 — 45\nWest Hill 8 15 11 19 — 53",
    ],
)
def test_too_little_text_is_null(text: str) -> None:
    assert detect_language(text) is None


def test_a_low_confidence_answer_is_null() -> None:
    # Latin filler: the model's best guess stays far below MIN_CONFIDENCE.
    assert (
        detect_language("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do.") is None
    )


def test_an_english_article_quoting_portuguese_is_english() -> None:
    text = (
        "The minister spoke to reporters outside the building on Tuesday morning. "
        "“Nós vamos continuar a trabalhar para o povo brasileiro”, he said, before "
        "leaving for the airport. Officials later confirmed the trip had been planned "
        "for weeks and that the delegation would return on Friday."
    )
    found = detect_language(text)
    assert found is not None
    assert found.code == "en"


def test_only_the_first_max_chars_are_examined() -> None:
    english = SENTENCES["en"] + " "
    german = SENTENCES["de"] + " "
    prefix = (english * (language.MAX_CHARS // len(english) + 1))[: language.MAX_CHARS]
    found = detect_language(prefix + german * 50)
    assert found is not None
    assert found.code == "en"


def test_the_result_is_deterministic_and_rounded() -> None:
    results = [detect_language(SENTENCES["pt"]) for _ in range(20)]
    assert all(result == results[0] for result in results)
    first = results[0]
    assert first is not None
    assert first.confidence == round(first.confidence, 3)
    encoded = {msgspec.json.encode(result) for result in results}
    assert len(encoded) == 1
    assert re.fullmatch(rb'\{"code":"pt","confidence":(0\.\d{1,3}|1\.0)\}', encoded.pop())


def test_a_lone_surrogate_does_not_raise() -> None:
    found = detect_language(SENTENCES["en"] + "\ud800")
    assert found is not None
    assert found.code == "en"


def test_the_model_loads_without_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> socket.socket:
        raise AssertionError("language detection tried to open a socket")

    language._detector.cache_clear()
    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    found = detect_language(SENTENCES["fr"])
    assert found is not None
    assert found.code == "fr"
