"""The sandboxed renderer: attacks refused at check() time, escaping, StrictUndefined.

Attack cases ported from Jinja2's own tests/test_security.py (pallets/jinja), adapted to
our context and to our stricter policy (str.format and format_map refused outright),
plus the well-known SSTI payloads.
"""

from __future__ import annotations

import pytest

from services.campaigns.rendering import (
    Rendered,
    TemplateProblem,
    TemplateRenderer,
    sample_context,
)


@pytest.fixture(scope="module")
def renderer() -> TemplateRenderer:
    return TemplateRenderer()


ATTACKS = [
    # from jinja's TestSandbox.test_unsafe
    "{{ contact.__class__ }}",
    "{{ track.__code__ }}",
    "{{ track.__globals__ }}",
    "{{ (42).__class__.__subclasses__() }}",
    # from test_immutable_environment
    "{{ [].append(23) }}",
    "{{ {1: 2}.clear() }}",
    # from test_attr_filter
    "{{ ''.__class__|attr('__subclasses__')() }}",
    "{{ ''|attr('__class__') }}",
    # from TestStringFormat / TestStringFormatMap: harmless in Jinja's sandbox, refused here
    '{{ "a{0.__class__}b".format(42) }}',
    '{{ "a{0.foo}b".format({"foo": 42}) }}',
    '{{ ("a{0.__class__}b{1}"|safe).format(42, "<foo>") }}',
    '{{ "a{x.__class__}b".format_map({"x": 42}) }}',
    '{{ ("a{x.foo}b{y}"|safe).format_map({"x": {"foo": 42}, "y": "<foo>"}) }}',
    # CVE-2024-56326 (format reached indirectly) and CVE-2025-27516 (|attr('format'))
    "{% set f = '{0.__class__.__init__.__globals__}'.format %}{{ f(cycler) }}",
    "{{ '{0.__class__}'|attr('format')(cycler) }}",
    "{{ ('{0.__class__}'|attr('format_map'))({'0': cycler}) }}",
    # classic SSTI payloads
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ''['__class__'] }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'] }}",
    "{{ self.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ config.items() }}",
    "{{ request.application.__globals__ }}",
    "{{ contact.attributes.update({}) }}",
    "{{ contact.attributes.pop('role') }}",
    "{{ resources.append(1) }}",
    "{{ 'a' * 10000000 }}",
    "{{ 2 ** 100000 }}",
    "{{ range(10000000)|list }}",
]


@pytest.mark.parametrize("attack", ATTACKS)
@pytest.mark.parametrize("part", ["subject", "html", "text"])
def test_attacks_are_refused_by_check(renderer: TemplateRenderer, attack: str, part: str) -> None:
    parts = {"subject": "Hello", "html": "<p>hi</p>", "text": "hi"}
    parts[part] = attack
    with pytest.raises(TemplateProblem) as info:
        renderer.check(parts["subject"], parts["html"], parts["text"])
    assert info.value.reason.startswith(f"{part}: ")


def test_restricted_for_targets_are_syntax_errors(renderer: TemplateRenderer) -> None:
    # from jinja's test_restricted
    for source in (
        "{% for item.attribute in resources %}...{% endfor %}",
        "{% for foo, bar.baz in resources %}...{% endfor %}",
    ):
        with pytest.raises(TemplateProblem, match=r"^text: line 1: "):
            renderer.check(None, None, source)


def test_reason_names_part_and_jinja_error(renderer: TemplateRenderer) -> None:
    with pytest.raises(TemplateProblem) as info:
        renderer.check("Hi", "{{ contact.email }}", "x")
    assert info.value.reason == "html: 'contact' has no attribute 'email'"
    with pytest.raises(TemplateProblem) as info:
        renderer.check("Hi", None, "{{ ''.__class__ }}")
    assert info.value.reason == "text: access to attribute '__class__' of 'str' object is unsafe."


def test_unknown_name_is_an_error(renderer: TemplateRenderer) -> None:
    with pytest.raises(TemplateProblem, match="'unknown_thing' is undefined"):
        renderer.check("{{ unknown_thing }}", None, "x")


def test_email_address_is_not_in_the_context() -> None:
    flat = repr(sample_context("email")) + repr(sample_context("toolkit"))
    assert "@" not in flat


def test_mutation_attempt_leaves_caller_data_alone(renderer: TemplateRenderer) -> None:
    context = sample_context()
    before = dict(context["contact"]["attributes"])
    with pytest.raises(TemplateProblem):
        renderer.render(None, None, "{{ contact.attributes.update({'role': 'x'}) }}", context)
    assert context["contact"]["attributes"] == before


def test_format_is_never_executed(renderer: TemplateRenderer) -> None:
    calls: list[str] = []

    class Canary:
        def __format__(self, spec: str) -> str:
            calls.append(spec)
            return "boom"

    context = {**sample_context(), "canary": Canary()}
    with pytest.raises(TemplateProblem):
        renderer.render(None, None, "{{ '{0}'.format(canary) }}", context)
    with pytest.raises(TemplateProblem):
        renderer.render(None, None, "{{ '{0}'|attr('format')(canary) }}", context)
    assert calls == []


def test_script_name_is_escaped_in_html_and_raw_in_text(renderer: TemplateRenderer) -> None:
    context = sample_context()
    context["contact"]["name"] = "<script>alert(1)</script>"
    out = renderer.render(
        "Hi {{ contact.name }}", "<p>{{ contact.name }}</p>", "{{ contact.name }}", context
    )
    assert out.html == "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"
    assert out.text == "<script>alert(1)</script>"
    assert out.subject == "Hi <script>alert(1)</script>"


def test_macro_output_is_escaped(renderer: TemplateRenderer) -> None:
    # from jinja's test_template_data
    source = (
        "{% macro say_hello(name) %}<p>Hello {{ name }}!</p>{% endmacro %}"
        '{{ say_hello("<blink>foo</blink>") }}'
    )
    out = renderer.render(None, source, "x", sample_context())
    assert out.html == "<p>Hello &lt;blink&gt;foo&lt;/blink&gt;!</p>"


def test_subject_is_one_line(renderer: TemplateRenderer) -> None:
    context = sample_context()
    context["contact"]["first_name"] = "Ann\r\nBcc: evil@example.com"
    out = renderer.render("Hi {{ contact.first_name }}", None, "x", context)
    assert out.subject is not None and "\n" not in out.subject and "\r" not in out.subject


def test_full_context_renders(renderer: TemplateRenderer) -> None:
    html = (
        "<p>{{ contact.first_name }} ({{ contact.language }}, {{ contact.attributes.role }})</p>"
        "{% for r in resources %}<a href='{{ r.url }}'>{{ r.title }}</a> {{ r.kind }}{% endfor %}"
        "{% for r in recommended %}{{ r.id }}{% endfor %}"
        "<a href='{{ track('https://example.org/guide?a=1&b=2') }}'>g</a>"
        "{{ campaign.name }} {{ unsubscribe_url }} {{ preferences_url }}"
        "{% if messenger %}{{ messenger.name }}{% endif %}"
    )
    out = renderer.render("{{ campaign.name }}", html, "{{ contact.name }}", sample_context())
    assert isinstance(out, Rendered)
    assert "Diet tips from parents" in (out.html or "")
    renderer.check("{{ messenger.name }}", None, "x", channel="toolkit")
    renderer.check(None, None, "{{ platform }}", channel="social")
    with pytest.raises(TemplateProblem):
        renderer.check("{{ messenger.name }}", None, "x", channel="email")


def test_track_refuses_non_http_urls(renderer: TemplateRenderer) -> None:
    with pytest.raises(TemplateProblem, match="track"):
        renderer.check(None, "{{ track('javascript:alert(1)') }}", "x")


def test_templates_are_compiled_once(renderer: TemplateRenderer) -> None:
    source = "<p>{{ contact.name }} {{ resources|length }}</p>"
    renderer.render(None, source, "t", sample_context())
    cached = len(renderer._cache)
    for i in range(200):
        context = sample_context()
        context["contact"]["name"] = f"n{i}"
        assert renderer.render(None, source, "t", context).html == f"<p>n{i} 2</p>"
    assert len(renderer._cache) == cached
