def test_fixture_is_real_mnist(small_mnist):
    # The fixture's first test digit is the famous 7 and every class is present.
    assert small_mnist.y_test[0] == 7
    assert set(small_mnist.y_train.tolist()) == set(range(10))
    assert small_mnist.x_train.dtype.name == "uint8" and small_mnist.x_train.shape == (2000, 28, 28)


def test_registry_with_copies_tiny(registry_with):
    from mnist_core import registry

    registry_with("a", "b")
    names = sorted(e.name for e in registry.list_models() if e.ok)
    assert names == ["a", "b"]
