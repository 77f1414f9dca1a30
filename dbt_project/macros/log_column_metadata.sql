{#-
    Logs the built relation's columns (name, database type, YAML description) and its
    parents' columns as one JSON line. dagster-dbt attaches a JSON log line from a
    node to that node's materialization, so the types reach Dagster's column schema
    and column lineage without Dagster opening the DuckDB file while dbt holds its
    only write lock. Runs as a post-hook on every model; silent outside Dagster.
-#}
{% macro log_column_metadata() %}
    {%- if execute and env_var('DAGSTER_DBT_CLI', '') == 'true' -%}
        {%- set described = model.columns -%}
        {%- set columns = {} -%}
        {%- for column in adapter.get_columns_in_relation(this) -%}
            {%- set yaml = described.get(column.name, {}) -%}
            {%- do columns.update({column.name: {
                'data_type': column.data_type,
                'description': yaml.get('description') if yaml is mapping else yaml.description
            }}) -%}
        {%- endfor -%}
        {%- set parents = {} -%}
        {%- for parent_id in model.depends_on.nodes -%}
            {%- set parent = graph.sources.get(parent_id) or graph.nodes.get(parent_id) -%}
            {%- set relation = adapter.get_relation(
                database=parent.database,
                schema=parent.schema,
                identifier=parent.identifier if parent.resource_type == 'source' else parent.alias
            ) -%}
            {%- if relation is not none -%}
                {%- set parent_columns = {} -%}
                {%- for column in adapter.get_columns_in_relation(relation) -%}
                    {%- do parent_columns.update({column.name: {'data_type': column.data_type}}) -%}
                {%- endfor -%}
                {%- do parents.update({parent.relation_name: {'columns': parent_columns}}) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- do log(tojson({
            'database': this.database,
            'schema': this.schema,
            'alias': this.identifier,
            'columns': columns,
            'parents': parents
        }), info=true) -%}
    {%- endif -%}
{% endmacro %}
