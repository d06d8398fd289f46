from services.kernel.health import ReadinessCheck, evaluate


async def ok() -> None:
    return None


async def down() -> None:
    raise ConnectionError("connection refused")


async def test_readiness_is_ready_when_every_dependency_answers() -> None:
    readiness = await evaluate([ReadinessCheck("database", ok), ReadinessCheck("kafka", ok)])
    assert (readiness.status, readiness.down) == ("ready", [])


async def test_readiness_names_each_dependency_that_is_down_with_the_reason() -> None:
    readiness = await evaluate([ReadinessCheck("database", ok), ReadinessCheck("kafka", down)])
    assert readiness.status == "unavailable"
    assert readiness.down == ["kafka"]
    assert readiness.checks == {"database": "ok", "kafka": "ConnectionError: connection refused"}
