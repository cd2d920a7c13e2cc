"""`comms.topics`: the checks on topic levels, names and filters, and the topics' shapes.

A filter or level that gets past these checks reaches the broker, which disconnects the client
(a bad SUBSCRIBE) or, for a level, lets a camera's name address other topics.
"""

from __future__ import annotations

import re

import pytest

from har_daemon.comms.topics import (
    OFFLINE,
    ONLINE,
    Topics,
    availability,
    check_topic_filter,
    check_topic_level,
    check_topic_name,
    shared,
)

LEVEL_RULE = "cannot be an MQTT topic level (empty, or contains '/', '+', '#' or whitespace)"


def _exact(message: str) -> str:
    return "^" + re.escape(message) + "$"


def test_availability_payloads() -> None:
    assert (availability(True), availability(False)) == (ONLINE, OFFLINE) == ("online", "offline")


@pytest.mark.parametrize("name", ["", "a/b", "a+b", "#", "a b", "a\tb", "a\0b"])
def test_check_topic_level_refuses_with_the_rule(name: str) -> None:
    with pytest.raises(ValueError, match=_exact(f"camera name {name!r} {LEVEL_RULE}")):
        check_topic_level(name)
    with pytest.raises(ValueError, match=_exact(f"zone {name!r} {LEVEL_RULE}")):
        check_topic_level(name, "zone")


def test_check_topic_level_returns_a_valid_level() -> None:
    assert check_topic_level("lobby-1_É") == "lobby-1_É"


@pytest.mark.parametrize("topic", ["a/+", "+", "a/#", "#", "a/+/b#"])
def test_a_topic_name_has_no_wildcard(topic: str) -> None:
    with pytest.raises(ValueError):
        check_topic_name(topic)


def test_check_topic_name_messages_and_a_valid_name() -> None:
    assert check_topic_name("har/lobby/events") == "har/lobby/events"
    with pytest.raises(ValueError, match=r"^wildcard in topic name 'har/\+/set'$"):
        check_topic_name("har/+/set")
    with pytest.raises(ValueError, match="^wildcard in topic name 'har/#'$"):
        check_topic_name("har/#")
    with pytest.raises(ValueError, match="^empty topic filter$"):
        check_topic_name("")


@pytest.mark.parametrize("topic_filter", ["a", "a/b/c", "+", "#", "a/+/b", "a/#", "+/+/#", "/a/"])
def test_valid_filters_pass(topic_filter: str) -> None:
    assert check_topic_filter(topic_filter) == topic_filter


@pytest.mark.parametrize(
    ("topic_filter", "message"),
    [
        ("", "empty topic filter"),
        ("a\0b", "NUL character in topic filter 'a\\x00b'"),
        ("a/b+", "wildcard inside a topic level in 'a/b+'"),
        ("a/+b/c", "wildcard inside a topic level in 'a/+b/c'"),
        ("a#", "wildcard inside a topic level in 'a#'"),
        ("a/#b", "wildcard inside a topic level in 'a/#b'"),
        ("a/#/b", "'#' not at the end of 'a/#/b'"),
        ("#/a", "'#' not at the end of '#/a'"),
    ],
)
def test_invalid_filters_are_refused_saying_why(topic_filter: str, message: str) -> None:
    with pytest.raises(ValueError, match=_exact(message)):
        check_topic_filter(topic_filter)


def test_the_length_limit_counts_utf8_bytes() -> None:
    assert check_topic_filter("a" * 65535) == "a" * 65535
    for too_long in ("a" * 65536, "é" * 32768):  # the second is 32768 characters
        with pytest.raises(ValueError, match="^topic filter longer than 65535 bytes$"):
            check_topic_filter(too_long)


def test_shared_subscription_checks_group_and_filter() -> None:
    assert shared("workers", "har/+/events") == "$share/workers/har/+/events"
    with pytest.raises(ValueError, match=_exact(f"share group 'a/b' {LEVEL_RULE}")):
        shared("a/b", "har/+/events")
    with pytest.raises(ValueError, match="'#' not at the end"):
        shared("workers", "har/#/events")


def test_prefix_loses_only_its_outer_slashes() -> None:
    assert Topics("/site/har/").prefix == "site/har"
    assert Topics("Xsite/").events("lobby") == "Xsite/lobby/events"


def test_instance_info_topics_are_recognised_exactly() -> None:
    t = Topics("har")
    assert t.is_instance_info("har/instances/a/info")
    assert not t.is_instance_info("hax/instances/a/info")  # same length, another prefix
    assert not t.is_instance_info("har/instances/a/b/info")
    assert not t.is_instance_info("har/instances//info")
    assert not t.is_instance_info("har/instances/a/status")
    assert t.instances_filters == ["har/instances/+/info", "har/instances/+/status", "har/status"]


def test_recogniser_activity_topic_and_its_check() -> None:
    t = Topics("har")
    assert t.recogniser_activity("lobby", "fall") == "har/lobby/activity/fall"
    with pytest.raises(ValueError, match=_exact(f"activity 'fa/ll' {LEVEL_RULE}")):
        t.recogniser_activity("lobby", "fa/ll")


@pytest.mark.parametrize(
    ("topic", "camera"),
    [
        ("har/lobby/set", "lobby"),
        ("hax/lobby/set", None),  # same length, another prefix
        ("har/lobbyxset", None),
        ("har//set", None),
        ("har/a/b/set", None),
    ],
)
def test_camera_of_needs_the_prefix_the_leaf_and_one_level(topic: str, camera: str | None) -> None:
    assert Topics("har").camera_of(topic, "set") == camera
