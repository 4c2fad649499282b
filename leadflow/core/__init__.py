"""leadflow's ground floor: helpers every app may import (tenancy, errors, the
database and mail helpers, pagination, the API's shared schemas...). Nothing
here imports an app; the roof (settings, URLs, the API, Celery) is leadflow/."""
