"""Declarations as pure, validated data: what a project's YAML says, with no Dagster in it.

The components in ``training_pipeline.components`` resolve a ``defs.yaml`` and hand its
attributes to these models; engines, assets and sensors take the validated specs.
"""
